"""Models for the harness: an MLP and a small CNN for digits/synthetic data, and the CIFAR ResNets of the DKD, DIST
and SimKD tables (resnet8x4, resnet32x4: CIFAR-style ResNets with 4× width).

Every model exposes ``feature_map(x)`` (the last post-ReLU features: (B, D) or (B, C, H, W)), ``classifier`` (an
``nn.Linear``) and ``forward(x) = classifier(pool(feature_map(x)))`` with global average pooling for maps, so
``kdref.losses.reused_teacher_logits(model.feature_map(x), model.classifier)`` equals ``model(x)`` (SimKD's S1).

Model specs are strings: ``mlp:256,256`` (hidden widths), ``cnn:16,32`` (channels), ``resnet8x4``, ``resnet32x4``.
"""

from __future__ import annotations

import math
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["MLP", "CIFARResNet", "SmallCNN", "TwoHead", "build_model", "pooled", "resnet8x4", "resnet32x4"]


def pooled(features: Tensor) -> Tensor:
    """Global average pooling of a (B, C, H, W) map to (B, C); (B, D) passes through."""
    return features if features.dim() == 2 else F.adaptive_avg_pool2d(features, 1).flatten(1)


class MLP(nn.Module):
    """Flatten → [Linear → ReLU] per hidden width → Linear classifier."""

    def __init__(self, in_dim: int, hidden: list[int], num_classes: int):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        d = in_dim
        for h in hidden:
            layers += [nn.Linear(d, h), nn.ReLU()]
            d = h
        self.trunk = nn.Sequential(*layers)
        self.feature_dim = d
        self.classifier = nn.Linear(d, num_classes)

    def feature_map(self, x: Tensor) -> Tensor:
        return self.trunk(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.feature_map(x))


class SmallCNN(nn.Module):
    """[Conv3×3 → BN → ReLU] per channel width (2×2 max-pool between blocks) → GAP → Linear. For 8×8 digits."""

    def __init__(self, in_channels: int, channels: list[int], num_classes: int):
        super().__init__()
        layers: list[nn.Module] = []
        c = in_channels
        for i, w in enumerate(channels):
            if i:
                layers.append(nn.MaxPool2d(2))
            layers += [nn.Conv2d(c, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU()]
            c = w
        self.trunk = nn.Sequential(*layers)
        self.feature_dim = c
        self.classifier = nn.Linear(c, num_classes)

    def feature_map(self, x: Tensor) -> Tensor:
        return self.trunk(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(pooled(self.feature_map(x)))


class BasicBlock(nn.Module):
    """The CIFAR ResNet basic block: conv3×3 → BN → ReLU → conv3×3 → BN, + shortcut (1×1 conv + BN on a change)."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class CIFARResNet(nn.Module):
    """CIFAR ResNet-``depth`` (depth = 6n + 2) with stage widths ``widths`` (x4 models: 32 stem, 64/128/256 stages).

    32×32 input → 3×3 stem → three stages of n basic blocks (strides 1, 2, 2) → 8×8 map → GAP → Linear.
    resnet8x4 has n = 1, resnet32x4 n = 5 (the teacher/student pair of the DKD, DIST and SimKD CIFAR-100 tables).
    """

    def __init__(self, depth: int, widths: tuple[int, int, int, int], num_classes: int, in_channels: int = 3):
        super().__init__()
        if (depth - 2) % 6:
            raise ValueError(f"CIFARResNet: depth must be 6n + 2, got {depth}")
        n = (depth - 2) // 6
        self.stem = nn.Sequential(nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[0]))
        blocks: list[nn.Module] = []
        c = widths[0]
        for stage, w in enumerate(widths[1:]):
            for i in range(n):
                blocks.append(BasicBlock(c, w, 2 if (stage > 0 and i == 0) else 1))
                c = w
        self.blocks = nn.Sequential(*blocks)
        self.feature_dim = c
        self.classifier = nn.Linear(c, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def feature_map(self, x: Tensor) -> Tensor:
        return self.blocks(F.relu(self.stem(x)))

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(pooled(self.feature_map(x)))


def resnet8x4(num_classes: int = 100) -> CIFARResNet:
    return CIFARResNet(8, (32, 64, 128, 256), num_classes)


def resnet32x4(num_classes: int = 100) -> CIFARResNet:
    return CIFARResNet(32, (32, 64, 128, 256), num_classes)


class TwoHead(nn.Module):
    """A trunk with a class head and a distillation head (DeiT's two tokens, as two linear heads on shared features).

    ``forward(x)`` returns ``(cls_logits, dist_logits)``; predict with ``kdref.losses.deit_predict``.
    """

    def __init__(self, base: nn.Module, num_classes: int):
        super().__init__()
        self.base: Any = base
        d = cast(int, base.feature_dim)
        self.dist_head = nn.Linear(d, num_classes)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        f = pooled(self.base.feature_map(x))
        return self.base.classifier(f), self.dist_head(f)


def build_model(spec: str, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """A model from a spec string: ``mlp:W1,W2,...`` | ``cnn:C1,C2,...`` | ``resnet8x4`` | ``resnet32x4``."""
    kind, _, arg = spec.partition(":")
    widths = [int(v) for v in arg.split(",") if v] if arg else []
    if kind == "mlp":
        return MLP(math.prod(input_shape), widths or [64], num_classes)
    if kind == "cnn":
        if len(input_shape) != 3:
            raise ValueError(f"build_model: cnn needs image inputs (C, H, W), got shape {input_shape}")
        return SmallCNN(input_shape[0], widths or [16, 32], num_classes)
    if kind in ("resnet8x4", "resnet32x4"):
        if len(input_shape) != 3:
            raise ValueError(f"build_model: {kind} needs image inputs (C, H, W), got shape {input_shape}")
        depth = 8 if kind == "resnet8x4" else 32
        return CIFARResNet(depth, (32, 64, 128, 256), num_classes, in_channels=input_shape[0])
    raise ValueError(f"build_model: unknown model spec {spec!r}; use mlp:W,..., cnn:C,..., resnet8x4, resnet32x4")


@torch.no_grad()
def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
