"""Implementations under test: a namespace of contract functions plus the dtype and device to run it in.

Every check talks to an implementation through NumPy float64 arrays: :meth:`Implementation.round` quantises an
input to the dtype under test, :meth:`Implementation.value` and :meth:`Implementation.value_and_grad` return
float64 results, so one property is written once for NumPy, Torch or anything an adapter wraps.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from ._contract import CONTRACT, is_integer_arg

#: Which arguments a gradient is taken with respect to: one position, or a tuple of positions.
Wrt = int | tuple[int, ...]


def _positions(wrt: Wrt) -> tuple[int, ...]:
    return tuple(wrt) if isinstance(wrt, tuple) else (wrt,)


@dataclass(repr=False)
class Implementation:
    """Base class: a namespace exposing some contract functions, run in one dtype."""

    name: str
    namespace: Any
    dtype: str = "float64"
    device: str = "cpu"
    kind: str = field(default="numpy", init=False)

    def __post_init__(self) -> None:
        """Subclasses set up their array library here."""

    @property
    def id(self) -> str:
        return self.name

    def provides(self, *functions: str) -> bool:
        return all(callable(getattr(self.namespace, f, None)) for f in functions)

    def has_grad(self, fn: str) -> bool:
        """Whether gradients of ``fn`` can be taken (autograd, or a ``<fn>_grad`` function)."""
        return self.provides(fn + "_grad")

    def require(self, *functions: str) -> None:
        """Skip the calling test, reported as "not provided", unless every function exists."""
        missing = [f for f in functions if not self.provides(f)]
        if missing:
            pytest.skip(f"not provided: {', '.join(missing)}")

    @property
    def max_abs(self) -> float:
        """The largest logit magnitude worth generating for this dtype."""
        return {"float16": 6.0e4, "bfloat16": 1e30, "float32": 1e30}.get(self.dtype, 1e300)

    def round(self, x: np.ndarray) -> np.ndarray:
        """Quantise float64 values to the dtype under test and back, so the reference sees the same input."""
        return np.asarray(x, dtype=np.float64)

    def value(self, fn: str, *args: np.ndarray, **kw: Any) -> np.ndarray:
        """Evaluate ``fn`` and return its value as float64."""
        raise NotImplementedError

    def value_and_grad(
        self, fn: str, *args: np.ndarray, grad_output: np.ndarray | None = None, wrt: Wrt = 0, **kw: Any
    ) -> tuple[np.ndarray, Any]:
        """Value and the gradient with respect to argument ``wrt`` (default 0, the student logits).

        ``wrt`` may be a tuple of argument positions (e.g. ``(0, 1)`` for a two-head loss): the gradients then come
        back as a tuple in that order.
        """
        raise NotImplementedError

    def teacher_grad(self, fn: str, *args: np.ndarray, **kw: Any) -> np.ndarray | None:
        """The gradient that reaches a teacher-logits input that requires grad (None or zeros if none does)."""
        return None

    def __repr__(self) -> str:
        return f"<{self.name}>"


class NumpyImplementation(Implementation):
    """A NumPy namespace; gradients come from its ``<fn>_grad`` functions where it provides them."""

    def value(self, fn: str, *args: np.ndarray, **kw: Any) -> np.ndarray:
        return np.asarray(getattr(self.namespace, fn)(*args, **kw), dtype=np.float64)

    def value_and_grad(
        self, fn: str, *args: np.ndarray, grad_output: np.ndarray | None = None, wrt: Wrt = 0, **kw: Any
    ) -> tuple[np.ndarray, Any]:
        self.require(fn + "_grad")
        value = self.value(fn, *args, **kw)
        grad = getattr(self.namespace, fn + "_grad")(*args, grad_output=grad_output, **kw)
        # A ``<fn>_grad`` returns the gradient wrt argument 0, or a tuple of gradients wrt arguments 0, 1, ...
        grads = tuple(grad) if isinstance(grad, tuple) else (grad,)
        picked = tuple(np.asarray(grads[i], dtype=np.float64) for i in _positions(wrt))
        return value, picked if isinstance(wrt, tuple) else picked[0]


class TorchImplementation(Implementation):
    """A namespace of Torch functions, run on ``device`` in ``dtype``; gradients by autograd."""

    def __post_init__(self) -> None:
        self.kind = "torch"
        import torch

        self._torch = torch
        self._dtype = getattr(torch, self.dtype)

    def has_grad(self, fn: str) -> bool:
        return True

    def round(self, x: np.ndarray) -> np.ndarray:
        t = self._torch.as_tensor(np.asarray(x, dtype=np.float64)).to(self._dtype)
        return t.to(self._torch.float64).numpy()

    def _tensors(self, fn: str, args: tuple[np.ndarray, ...], grad_args: tuple[int, ...] = ()) -> list[Any]:
        names = CONTRACT[fn].args if fn in CONTRACT else tuple(f"arg{i}" for i in range(len(args)))
        out = []
        for i, (name, a) in enumerate(zip(names, args)):
            arr = np.asarray(a)
            if is_integer_arg(name) or np.issubdtype(arr.dtype, np.integer):
                out.append(self._torch.as_tensor(arr, dtype=self._torch.long, device=self.device))
            else:
                t = self._torch.as_tensor(arr, dtype=self._torch.float64).to(device=self.device, dtype=self._dtype)
                out.append(t.requires_grad_(i in grad_args))
        return out

    def _numpy(self, x: Any) -> np.ndarray:
        return x.detach().to("cpu", self._torch.float64).numpy()

    def value(self, fn: str, *args: np.ndarray, **kw: Any) -> np.ndarray:
        with self._torch.no_grad():
            return self._numpy(getattr(self.namespace, fn)(*self._tensors(fn, args), **kw))

    def value_and_grad(
        self, fn: str, *args: np.ndarray, grad_output: np.ndarray | None = None, wrt: Wrt = 0, **kw: Any
    ) -> tuple[np.ndarray, Any]:
        positions = _positions(wrt)
        tensors = self._tensors(fn, args, grad_args=positions)
        out = getattr(self.namespace, fn)(*tensors, **kw)
        go = (
            self._torch.ones_like(out)
            if grad_output is None
            else self._torch.as_tensor(np.asarray(grad_output, dtype=np.float64)).to(device=out.device, dtype=out.dtype)
        )
        inputs = [tensors[i] for i in positions]
        # An input the loss does not use (e.g. the distillation head when distillation="none") has zero gradient.
        grads = self._torch.autograd.grad(out, inputs, go, allow_unused=True)
        picked = tuple(self._numpy(self._torch.zeros_like(x) if g is None else g) for g, x in zip(grads, inputs))
        return self._numpy(out), picked if isinstance(wrt, tuple) else picked[0]

    def teacher_grad(self, fn: str, *args: np.ndarray, **kw: Any) -> np.ndarray | None:
        names = CONTRACT[fn].args if fn in CONTRACT else ()
        teacher = names.index("teacher_logits") if "teacher_logits" in names else 1
        tensors = self._tensors(fn, args, grad_args=(0, teacher))
        out = getattr(self.namespace, fn)(*tensors, **kw)
        out.sum().backward()
        g = tensors[teacher].grad
        return None if g is None else self._numpy(g)


def _torch_devices() -> list[str]:
    import torch

    return ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]


def kdref_implementations() -> list[Implementation]:
    """kdref's own tiers: the NumPy reference, and the Torch losses in every dtype on every device present."""
    reference = importlib.import_module("kdref.reference")
    losses = importlib.import_module("kdref.losses")
    impls: list[Implementation] = [NumpyImplementation("kdref.reference", reference)]
    for device in _torch_devices():
        for dtype in ("float64", "float32", "bfloat16", "float16"):
            impls.append(TorchImplementation(f"kdref.losses[{device},{dtype}]", losses, dtype, device))
    return impls
