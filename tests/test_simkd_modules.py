"""SimKD's projector, spatial alignment and reused teacher head (Chen et al., CVPR 2022): S1–S3 and freezing."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

import kdref
from kdref import reference


def _teacher_head(C: int, K: int, seed: int) -> tuple[nn.Module, nn.Linear]:
    """A teacher's own pooling + classifier, float64, frozen: (GAP → fc, the fc alone)."""
    torch.manual_seed(seed)
    fc = nn.Linear(C, K).double()
    kdref.freeze_(fc)
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), fc), fc


@given(
    B=st.integers(1, 4),
    C=st.integers(1, 8),
    K=st.integers(2, 10),
    H=st.integers(1, 6),
    W=st.integers(1, 6),
    seed=st.integers(0, 2**31 - 1),
    scale=st.sampled_from([1e-3, 1.0, 1e3]),
)
def test_aligned_features_give_exactly_the_teachers_logits(B, C, K, H, W, seed, scale) -> None:
    """S1: if P(f_s) = f_t, the student's logits through the reused head equal the teacher's exactly (bit for bit)."""
    teacher, fc = _teacher_head(C, K, seed)
    f_t = torch.randn(B, C, H, W, dtype=torch.float64, generator=torch.Generator().manual_seed(seed)) * scale
    assert torch.equal(kdref.reused_teacher_logits(f_t, fc), teacher(f_t))
    assert torch.equal(kdref.reused_teacher_logits(f_t.mean((2, 3)), fc), fc(f_t.mean((2, 3))))
    # Through SimKDStudent, with a projector that outputs exactly the teacher's features (the oracle of S1).
    oracle = SimpleNamespaceModule(lambda x: f_t)
    out = kdref.SimKDStudent(nn.Identity(), oracle, fc)(torch.zeros(B, 1, H, W, dtype=torch.float64))
    assert torch.equal(out.logits, teacher(f_t))
    assert torch.equal(out.logits.argmax(-1), teacher(f_t).argmax(-1))
    # The reference tier's ŷ = W·GAP(f) + b agrees.
    np.testing.assert_allclose(
        reference.simkd_logits(f_t.numpy(), fc.weight.numpy(), fc.bias.numpy()),
        teacher(f_t).numpy(),
        rtol=1e-13,
        atol=1e-13 * scale,
    )


class SimpleNamespaceModule(nn.Module):
    """A module that applies a fixed function (a stand-in projector)."""

    def __init__(self, f):
        super().__init__()
        self.f = f

    def forward(self, x):
        return self.f(x)


@pytest.mark.parametrize(("H", "k"), [(8, 4), (8, 2), (6, 3), (6, 2), (4, 1), (9, 3)])
def test_gap_after_adaptive_pool_is_gap_when_sizes_divide(H: int, k: int) -> None:
    """S2: GAP(AdaptiveAvgPool_k(f)) = GAP(f) when k divides H (and W)."""
    f = torch.randn(2, 3, H, H, dtype=torch.float64)
    torch.testing.assert_close(
        F.adaptive_avg_pool2d(F.adaptive_avg_pool2d(f, k), 1), F.adaptive_avg_pool2d(f, 1), rtol=1e-14, atol=1e-15
    )


@pytest.mark.parametrize(("H", "k"), [(5, 3), (7, 4), (5, 2)])
def test_gap_after_adaptive_pool_differs_when_sizes_do_not_divide(H: int, k: int) -> None:
    """S2 counterexample: overlapping adaptive bins count the middle rows twice, so GAP changes."""
    f = torch.zeros(1, 1, H, H, dtype=torch.float64)
    f[..., H // 2, :] = 1.0  # a single bright middle row
    pooled_first = float(F.adaptive_avg_pool2d(F.adaptive_avg_pool2d(f, k), 1))
    direct = float(F.adaptive_avg_pool2d(f, 1))
    assert abs(pooled_first - direct) > 1e-2, (pooled_first, direct)


@given(
    B=st.integers(1, 4),
    C=st.integers(1, 8),
    K=st.integers(1, 10),
    H=st.integers(1, 5),
    W=st.integers(1, 5),
    seed=st.integers(0, 2**31 - 1),
)
def test_logit_error_is_bounded_by_the_feature_error(B, C, K, H, W, seed) -> None:
    """S3: ‖ŷ_s − ŷ_t‖₂ ≤ ‖W‖_op·‖P(f_s) − f_t‖_F/√(HW) per sample (Jensen on the spatial mean)."""
    rng = np.random.default_rng(seed)
    Wt, b = rng.standard_normal((K, C)), rng.standard_normal(K)
    p, t = rng.standard_normal((2, B, C, H, W))
    err = np.linalg.norm(reference.simkd_logits(p, Wt, b) - reference.simkd_logits(t, Wt, b), axis=-1)
    bound = np.linalg.norm(Wt, 2) * np.linalg.norm((p - t).reshape(B, -1), axis=-1) / np.sqrt(H * W)
    assert np.all(err <= bound * (1 + 1e-12) + 1e-14), (err, bound)


def test_logit_error_bound_is_tight() -> None:
    """S3 is attained by a spatially constant error along W's top right-singular vector."""
    rng = np.random.default_rng(0)
    Wt = rng.standard_normal((5, 4))
    v = np.linalg.svd(Wt)[2][0]
    d = np.broadcast_to(v[None, :, None, None], (1, 4, 3, 3))
    t = rng.standard_normal((1, 4, 3, 3))
    err = np.linalg.norm(reference.simkd_logits(t + d, Wt) - reference.simkd_logits(t, Wt))
    assert err == pytest.approx(np.linalg.norm(Wt, 2) * np.linalg.norm(d) / 3.0, rel=1e-12)


def test_frozen_head_gets_no_gradient_and_is_not_updated() -> None:
    """The teacher classifier receives no gradient and is unchanged by an optimiser step; gradient flows through it."""
    torch.manual_seed(0)
    trunk = nn.Conv2d(3, 8, 3, padding=1)
    projector = kdref.SimKDProjector(8, 16, factor=2)
    head = nn.Linear(16, 10)
    before = {k: v.clone() for k, v in head.state_dict().items()}
    model = kdref.SimKDStudent(trunk, projector, head)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    x, f_t = torch.randn(4, 3, 8, 8), torch.relu(torch.randn(4, 16, 4, 4))
    out = model(x, f_t)
    assert out.projected.shape == (4, 16, 4, 4) and out.teacher_features.shape == (4, 16, 4, 4)
    # A loss on the logits only: its gradient must reach the projector and the trunk through the frozen head.
    F.cross_entropy(out.logits, torch.tensor([0, 1, 2, 3])).backward()
    assert all(p.grad is None for p in head.parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in projector.parameters())
    assert trunk.weight.grad is not None and trunk.weight.grad.abs().sum() > 0
    opt.step()
    opt.zero_grad()
    kdref.simkd_loss(*model(x, f_t)[:2]).backward()
    opt.step()
    for k, v in head.state_dict().items():
        assert torch.equal(v, before[k]), k
    model.train()
    assert model.training and projector.training and not head.training


def test_align_spatial_pools_the_larger_map() -> None:
    """The larger map is adaptive-average-pooled to the smaller size, per dimension; the other is returned as is."""
    s, t = torch.randn(2, 8, 8, 8), torch.randn(2, 16, 4, 4)
    s2, t2 = kdref.align_spatial(s, t)
    assert t2 is t and s2.shape == (2, 8, 4, 4)
    torch.testing.assert_close(s2, F.adaptive_avg_pool2d(s, 4))
    s3, t3 = kdref.align_spatial(torch.randn(2, 8, 4, 4), torch.randn(2, 16, 8, 8))
    assert s3.shape == (2, 8, 4, 4) and t3.shape == (2, 16, 4, 4)
    s4, t4 = kdref.align_spatial(torch.randn(1, 2, 6, 3), torch.randn(1, 2, 4, 5))
    assert s4.shape[2:] == (4, 3) and t4.shape[2:] == (4, 3)


def test_projector_architecture() -> None:
    """1×1 → BN → ReLU → 3×3 → BN → ReLU → 1×1 → BN → ReLU, no conv bias, width t_n/factor; output ≥ 0."""
    P = kdref.SimKDProjector(64, 256, factor=4)
    convs = [m for m in P.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.padding) for c in convs] == [
        (64, 64, (1, 1), (0, 0)),
        (64, 64, (3, 3), (1, 1)),
        (64, 256, (1, 1), (0, 0)),
    ]
    assert all(c.bias is None for c in convs)
    assert [type(m).__name__ for m in P.layers] == ["Conv2d", "BatchNorm2d", "ReLU"] * 3
    y = P(torch.randn(2, 64, 5, 5))
    assert y.shape == (2, 256, 5, 5) and bool((y >= 0).all())
    # The CIFAR pair ResNet-8x4 → ResNet-32x4 (256 → 256 channels, f = 2): 214,016 parameters.
    assert sum(p.numel() for p in kdref.SimKDProjector(256, 256).parameters()) == 214016


def test_simkd_module_bad_input() -> None:
    """Projector, alignment, head reuse and freezing reject bad arguments with clear errors."""
    with pytest.raises(
        ValueError, match=r"SimKDProjector: `teacher_channels` \(10\) must be divisible by `factor` \(4\)"
    ):
        kdref.SimKDProjector(8, 10, factor=4)
    with pytest.raises(ValueError, match=r"SimKDProjector: `factor` must be an integer >= 1"):
        kdref.SimKDProjector(8, 16, factor=0)
    with pytest.raises(ValueError, match=r"SimKDProjector: `student_channels` must be an integer >= 1"):
        kdref.SimKDProjector(8.0, 16)
    with pytest.raises(ValueError, match=r"SimKDProjector: `student_features` must have 8 channels"):
        kdref.SimKDProjector(8, 16)(torch.randn(1, 4, 2, 2))
    with pytest.raises(ValueError, match=r"align_spatial: `student_features` must be a \(B, C, H, W\)"):
        kdref.align_spatial(torch.randn(2, 3), torch.randn(2, 3, 4, 4))
    with pytest.raises(ValueError, match=r"align_spatial: `teacher_features` has batch size 3"):
        kdref.align_spatial(torch.randn(2, 3, 4, 4), torch.randn(3, 3, 4, 4))
    with pytest.raises(ValueError, match=r"reused_teacher_logits: `teacher_classifier` has parameters that require"):
        kdref.reused_teacher_logits(torch.randn(2, 4), nn.Linear(4, 3))
    with pytest.raises(ValueError, match=r"reused_teacher_logits: `projected_features` must be \(B, D\)"):
        kdref.reused_teacher_logits(torch.randn(2, 4, 3), kdref.freeze_(nn.Linear(4, 3)))
    with pytest.raises(TypeError, match=r"reused_teacher_logits: `teacher_classifier` must be a torch.nn.Module"):
        kdref.reused_teacher_logits(torch.randn(2, 4), lambda x: x)
    with pytest.raises(TypeError, match=r"freeze_: `module` must be a torch.nn.Module"):
        kdref.freeze_(torch.zeros(2))
    with pytest.raises(TypeError, match=r"SimKDStudent: `trunk` must be a torch.nn.Module"):
        kdref.SimKDStudent(None, nn.Identity(), nn.Linear(2, 2))


def test_simkd_pipeline_compiles_without_graph_breaks() -> None:
    """torch.compile(fullgraph=True) traces align_spatial + projector + simkd_loss + the reused head."""
    P = kdref.SimKDProjector(4, 8).eval()
    head = kdref.freeze_(nn.Linear(8, 5))

    def step(f_s: torch.Tensor, f_t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f_s, f_t = kdref.align_spatial(f_s, f_t)
        proj = P(f_s)
        return kdref.simkd_loss(proj, f_t), kdref.reused_teacher_logits(proj, head)

    compiled = torch.compile(step, fullgraph=True, backend="aot_eager")
    f_s, f_t = torch.randn(2, 4, 8, 8), torch.randn(2, 8, 4, 4)
    for a, b in zip(compiled(f_s, f_t), step(f_s, f_t)):
        torch.testing.assert_close(a, b)
