"""kdref.presets: each recipe's numbers against the official code and papers, and the total loss it builds."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import kdref
from kdref.conformance._contract import CONTRACT
from kdref.presets import PRESETS, Preset, preset

# name: (loss, keywords, ce_weight, kd_weight, warmup_epochs) — from official-code facts (mdistiller cfg.py; DIST
# resnet_dist.yaml; DeiT paper §5 and Eq. 3; big_vision bit_i1k.py; vanillaKD train-kd.py; SimKD run_distill.sh).
EXPECTED = {
    "hinton": ("kd_loss", {"temperature": 4.0, "reduction": "mean"}, 0.1, 0.9, None),
    "dkd": ("dkd_loss", {"alpha": 1.0, "beta": 8.0, "temperature": 4.0, "reduction": "mean"}, 1.0, 1.0, 20),
    "dist": ("dist_loss", {"beta": 2.0, "gamma": 2.0, "tau": 1.0}, 1.0, 1.0, None),
    "deit-hard": ("deit_hard_loss", {}, 0.0, 1.0, None),
    "deit-soft": ("deit_soft_loss", {"alpha": 0.1, "tau": 3.0}, 0.0, 1.0, None),
    "funmatch": ("funmatch_loss", {"temperature": 1.0}, 0.0, 1.0, None),
    "vanillakd": ("kd_loss", {"temperature": 1.0, "reduction": "mean"}, 1.0, 1.0, None),
    "simkd": ("simkd_loss", {}, 0.0, 1.0, None),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_preset_values(name: str) -> None:
    """Each preset holds the official loss, keywords, weights and warm-up, and names a contract function."""
    p = preset(name)
    loss, keywords, ce, kd, warmup = EXPECTED[name]
    assert (p.name, p.loss, dict(p.keywords), p.ce_weight, p.kd_weight, p.warmup_epochs) == (
        name,
        loss,
        keywords,
        ce,
        kd,
        warmup,
    )
    assert p.loss in CONTRACT
    assert set(p.keywords) <= set(CONTRACT[p.loss].keywords)
    assert p.loss_takes_target == ("target" in CONTRACT[p.loss].args)
    assert p.source and p.notes


def test_registry_lists_every_preset_and_rejects_unknown_names() -> None:
    """PRESETS holds exactly the eight recipes; an unknown name raises ValueError listing the known ones."""
    assert set(PRESETS) == set(EXPECTED)
    with pytest.raises(ValueError, match=r"preset: unknown preset 'kd'; known presets: deit-hard, deit-soft, dist"):
        preset("kd")
    with pytest.raises(ValueError, match=r"unknown preset"):
        preset(None)


def test_presets_are_immutable() -> None:
    """Presets are frozen: neither the fields nor the keywords can be changed in place."""
    p = preset("hinton")
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.kd_weight = 1.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        p.keywords["temperature"] = 1.0  # type: ignore[index]
    with pytest.raises(TypeError):
        PRESETS["x"] = p  # type: ignore[index]


def test_vanillakd_total_is_ce_plus_kd_at_temperature_one() -> None:
    """vanillakd: total = CE(s, y) + kd_loss(s, t, T = 1) (weights 1 and 1, Hao et al. 2023)."""
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(6, 10, generator=g, dtype=torch.float64), torch.randn(6, 10, generator=g, dtype=torch.float64)
    y = torch.randint(0, 10, (6,), generator=g)
    expected = F.cross_entropy(s, y) + kdref.kd_loss(s, t, temperature=1.0)
    torch.testing.assert_close(preset("vanillakd").total_loss(s, t, target=y), expected, rtol=1e-15, atol=0)


def test_hinton_dkd_funmatch_and_simkd_totals() -> None:
    """hinton = 0.1·CE + 0.9·KD(T=4); DKD warm-up scales the DKD term only; funmatch and simkd have no CE."""
    g = torch.Generator().manual_seed(1)
    s, t = torch.randn(4, 5, generator=g, dtype=torch.float64), torch.randn(4, 5, generator=g, dtype=torch.float64)
    y = torch.randint(0, 5, (4,), generator=g)
    ce = F.cross_entropy(s, y)
    torch.testing.assert_close(
        preset("hinton").total_loss(s, t, target=y), 0.1 * ce + 0.9 * kdref.kd_loss(s, t, temperature=4.0)
    )
    dkd = kdref.dkd_loss(s, t, y, alpha=1.0, beta=8.0, temperature=4.0)
    torch.testing.assert_close(preset("dkd").total_loss(s, t, y, target=y, epoch=5), ce + 5 / 20 * dkd)
    torch.testing.assert_close(preset("dkd").total_loss(s, t, y, target=y, epoch=40), ce + dkd)
    assert preset("dkd").kd_factor(1) == 1 / 20 and preset("hinton").kd_factor(3) == 1.0
    torch.testing.assert_close(preset("funmatch").total_loss(s, t), kdref.funmatch_loss(s, t, temperature=1.0))
    f_s, f_t = torch.randn(2, 3, 4, 4, generator=g), torch.randn(2, 3, 4, 4, generator=g)
    torch.testing.assert_close(preset("simkd").total_loss(f_s, f_t), kdref.simkd_loss(f_s, f_t))


def test_total_loss_errors() -> None:
    """A CE-weighted preset needs targets; bad epochs and tiers are rejected."""
    s = torch.randn(2, 3)
    with pytest.raises(ValueError, match=r"Preset\('vanillakd'\).total_loss: `target` is required"):
        preset("vanillakd").total_loss(s, s)
    with pytest.raises(ValueError, match=r"Preset\('dkd'\).kd_factor: `epoch` must be an integer >= 1"):
        preset("dkd").kd_factor(0)
    with pytest.raises(ValueError, match=r"`tier` must be one of"):
        preset("dkd").loss_fn("jax")


def test_loss_fn_resolves_both_tiers() -> None:
    """loss_fn gives the kdref.losses function by default and the kdref.reference one on request."""
    from kdref import reference

    assert preset("vanillakd").loss_fn() is kdref.kd_loss
    assert preset("funmatch").loss_fn("reference") is reference.funmatch_loss
    assert isinstance(preset("simkd"), Preset)


def test_presets_module_imports_no_torch_at_import_time() -> None:
    """kdref.presets resolves losses lazily: no module-level import of torch or of a loss tier."""
    import kdref.presets

    tree = ast.parse(Path(kdref.presets.__file__).read_text())
    names = [a.name for node in tree.body if isinstance(node, ast.Import) for a in node.names]
    names += [node.module or "" for node in tree.body if isinstance(node, ast.ImportFrom)]
    assert not [n for n in names if n.startswith("torch") or "losses" in n or "reference" in n], names
