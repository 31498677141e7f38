"""kdref.losses.compiled: same values, gradients and errors as the eager tier, fullgraph, and the eager fallback."""

from __future__ import annotations

import pytest
import torch

from kdref import losses as L
from kdref.losses import compiled as LC

pytestmark = pytest.mark.filterwarnings("ignore:The .grad attribute:UserWarning")

CALLS = [
    ("kd_loss", {"temperature": 2.0, "reduction": "none"}, False),
    ("soft_cross_entropy", {"reduction": "sum"}, False),
    ("hinton_loss", {"lam": 0.3}, True),
    ("tckd", {"temperature": 1.5}, True),
    ("nckd", {}, True),
    ("dkd_loss", {"alpha": 0.5, "beta": 2.0, "reduction": "none"}, True),
    ("dist_loss", {"tau": 2.0}, False),
    ("inter_class_relation", {}, False),
    ("intra_class_relation", {}, False),
]


@pytest.fixture
def backend():
    """Compile with the given backend for one test, then restore the default."""

    def use(name):
        torch._dynamo.reset()
        LC.configure(backend=name)

    yield use
    LC.configure()
    torch._dynamo.reset()


def _inputs(shape=(7, 11), dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (
        (torch.randn(shape, generator=g) * 3).to(dtype),
        (torch.randn(shape, generator=g) * 3).to(dtype),
        torch.randint(0, shape[-1], shape[:-1], generator=g),
    )


def _run(f, s, t, y, with_target, kw):
    x = s.clone().requires_grad_()
    out = f(x, t, y, **kw) if with_target else f(x, t, **kw)
    (out * 1.3).sum().backward()
    return out.detach(), x.grad


@pytest.mark.parametrize("dtype", (torch.float64, torch.bfloat16), ids=str)
def test_compiled_matches_eager_fullgraph(backend, dtype) -> None:
    """aot_eager backend, fullgraph=True: no graph break (a break would fall back with a warning, an error here)."""
    backend("aot_eager")
    s, t, y = _inputs(dtype=dtype)
    for name, kw, wt in CALLS:
        v1, g1 = _run(getattr(LC, name), s, t, y, wt, kw)
        v0, g0 = _run(getattr(L, name), s, t, y, wt, kw)
        assert v1.dtype == v0.dtype and g1.dtype == g0.dtype == dtype
        torch.testing.assert_close(v1, v0, atol=1e-6, rtol=1e-6)
        torch.testing.assert_close(g1.double(), g0.double(), atol=1e-6, rtol=1e-2 if dtype == torch.bfloat16 else 1e-6)
    assert not LC.compile_failed()


def test_core_traces_with_fullgraph() -> None:
    """The compiled cores are single graphs: torch._dynamo.explain finds no graph break."""
    from kdref.losses import dist, dkd, hinton

    torch._dynamo.reset()
    s, t, y = _inputs()
    for fn, args in (
        (hinton._soft_rows_plain, (s, t, 4.0, True)),
        (dkd._dkd_rows_plain, (s, t, y, 16.0, 1.0, 8.0)),
        (dist._dist_plain, (s, t, 1.0, 2.0, 2.0, "exact", 1e-8)),
    ):
        ex = torch._dynamo.explain(fn)(*args)
        assert ex.graph_break_count == 0, ex.break_reasons


def test_bad_input_raises_the_eager_error(backend) -> None:
    backend("aot_eager")
    s, t, y = _inputs()
    for name, _kw, wt in CALLS[:6]:
        with pytest.raises(ValueError, match=name):
            getattr(LC, name)(s, t[:, :5], y) if wt else getattr(LC, name)(s, t[:, :5])
    bad = s.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(ValueError, match="student_logits"):
        LC.dkd_loss(bad, t, y)
    with pytest.raises(ValueError, match="target"):
        LC.dkd_loss(s, t, y + 100)


def test_eager_fallback_when_the_compiler_fails(backend) -> None:
    def broken_backend(gm, example_inputs):
        raise RuntimeError("simulated compiler failure")

    backend(broken_backend)
    s, t, y = _inputs()
    with pytest.warns(RuntimeWarning, match="falling back to the eager kernel"):
        v1, g1 = _run(LC.dkd_loss, s, t, y, True, {})
    assert LC.compile_failed()
    v0, g0 = _run(L.dkd_loss, s, t, y, True, {})
    torch.testing.assert_close(v1, v0)
    torch.testing.assert_close(g1, g0)
    v2, _ = _run(LC.dkd_loss, s, t, y, True, {})  # stays eager, warns no more (warnings are errors here)
    torch.testing.assert_close(v2, v0)


def test_configure_none_runs_eager(backend) -> None:
    backend(None)
    s, t, _ = _inputs()
    torch.testing.assert_close(LC.kd_loss(s, t), L.kd_loss(s, t))


@pytest.mark.slow
def test_inductor_matches_eager(backend) -> None:
    """The default backend (inductor: a C++ compile on CPU, tens of seconds) for KD, DKD and DIST."""
    backend("inductor")
    s, t, y = _inputs(shape=(16, 40))
    for name, kw, wt in (CALLS[0], CALLS[5], CALLS[6]):
        v1, g1 = _run(getattr(LC, name), s, t, y, wt, kw)
        v0, g0 = _run(getattr(L, name), s, t, y, wt, kw)
        torch.testing.assert_close(v1, v0, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(g1, g0, atol=1e-5, rtol=1e-5)
    assert not LC.compile_failed()
