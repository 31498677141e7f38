"""Build the implementations under test from a module name, single functions and options."""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from ._contract import CONTRACT
from ._impl import Implementation, NumpyImplementation, TorchImplementation, kdref_implementations

DTYPES = ("float64", "float32", "bfloat16", "float16")


@dataclass
class Selection:
    """What the user asked to test: a module and/or single functions, the array library, dtypes, device."""

    module: str | None = None
    functions: list[str] = field(default_factory=list)
    array: str | None = None
    dtypes: list[str] | None = None
    device: str | None = None

    @property
    def is_default(self) -> bool:
        return self.module is None and not self.functions

    @classmethod
    def from_env(cls) -> Selection:
        fns = [f.strip() for f in os.environ.get("KDREF_FN", "").split(",") if f.strip()]
        dtypes = os.environ.get("KDREF_DTYPE")
        return cls(
            os.environ.get("KDREF_IMPL") or None,
            fns,
            os.environ.get("KDREF_ARRAY") or None,
            dtypes.split(",") if dtypes else None,
            os.environ.get("KDREF_DEVICE") or None,
        )

    @classmethod
    def from_config(cls, config: Any) -> Selection:
        """Command-line options first, the environment for whatever they leave unset."""
        env = cls.from_env()

        def opt(name: str) -> Any:
            try:
                return config.getoption(name)
            except (ValueError, AttributeError):
                return None

        dtypes = opt("kdref_dtype")
        return cls(
            opt("kdref_impl") or env.module,
            list(opt("kdref_fn") or []) or env.functions,
            opt("kdref_array") or env.array,
            dtypes.split(",") if dtypes else env.dtypes,
            opt("kdref_device") or env.device,
        )


def _resolve(target: str) -> Any:
    module, _, attr = target.partition(":")
    obj: Any = importlib.import_module(module)
    for part in filter(None, attr.split(".")):
        obj = getattr(obj, part)
    return obj


def namespace(selection: Selection) -> tuple[str, Any]:
    """The namespace of contract functions to test, and its display name."""
    base: dict[str, Any] = {}
    name = selection.module or "functions"
    if selection.module:
        mod = _resolve(selection.module)
        base = {fn: getattr(mod, fn) for fn in CONTRACT if callable(getattr(mod, fn, None))}
        base.update({f"{fn}_grad": getattr(mod, f"{fn}_grad") for fn in CONTRACT if hasattr(mod, f"{fn}_grad")})
        base["KDREF_ARRAY"] = getattr(mod, "KDREF_ARRAY", None)
    for item in selection.functions:
        fn, sep, target = item.partition("=")
        if not sep or fn not in CONTRACT:
            raise ValueError(
                f"--kdref-fn expects NAME=MODULE:ATTR with NAME one of the contract functions "
                f"{sorted(CONTRACT)}, got {item!r}"
            )
        base[fn] = _resolve(target)
    if not any(fn in base for fn in CONTRACT):
        raise ValueError(f"{name} provides none of the contract functions {sorted(CONTRACT)}")
    return name, SimpleNamespace(**base)


def implementations(selection: Selection) -> list[Implementation]:
    """kdref's own tiers by default; otherwise the named implementation in each requested dtype."""
    if selection.is_default:
        return kdref_implementations()
    name, ns = namespace(selection)
    array = selection.array or getattr(ns, "KDREF_ARRAY", None) or "torch"
    if array not in ("torch", "numpy"):
        raise ValueError(f"the array library must be 'torch' or 'numpy', got {array!r}")
    if array == "numpy":
        return [NumpyImplementation(f"{name}[numpy,float64]", ns)]
    dtypes = selection.dtypes or ["float64", "float32"]
    bad = [d for d in dtypes if d not in DTYPES]
    if bad:
        raise ValueError(f"unknown dtype(s) {bad}; choose from {list(DTYPES)}")
    device = selection.device or "cpu"
    return [TorchImplementation(f"{name}[{device},{d}]", ns, d, device) for d in dtypes]
