"""ResNeXt for small images (Xie et al. 2017, CIFAR variant): the SC09 protocol's digit classifier.

ResNeXt-29 8x64d by default: 3 stages of (depth - 2) / 9 bottleneck blocks, cardinality 8, base
width 64, widen factor 4, so the pooled penultimate features are 256 * widen_factor = 1024-d.
Module names follow the CIFAR ResNeXt the protocol's classifier used (stage_i, conv_reduce, ...).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from seqmamba.training.checkpoints import allow_in_checkpoints
from seqmamba.nn.sizes import check_sizes


@allow_in_checkpoints
@dataclass
class ResNeXtConfig:
    """Size of the classifier; tests use a tiny one (depth 11, cardinality 2, base_width 4, widen 1, stem 8)."""

    depth: int = 29
    cardinality: int = 8
    base_width: int = 64
    widen_factor: int = 4
    num_classes: int = 10
    in_channels: int = 1
    stem_width: int = 64

    def __post_init__(self) -> None:
        check_sizes(self)

    @property
    def stage_widths(self) -> tuple[int, int, int, int]:
        """Stem width, then the output width of each stage; the last is the feature size."""
        return self.stem_width, 64 * self.widen_factor, 128 * self.widen_factor, 256 * self.widen_factor


class ResNeXtBottleneck(nn.Module):
    """1x1 reduce, grouped 3x3 (cardinality groups), 1x1 expand, plus a (projected) shortcut."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, config: ResNeXtConfig) -> None:
        super().__init__()
        groups_width = config.cardinality * int(config.base_width * out_channels / (config.widen_factor * 64))
        self.conv_reduce = nn.Conv2d(in_channels, groups_width, 1, bias=False)
        self.bn_reduce = nn.BatchNorm2d(groups_width)
        self.conv_conv = nn.Conv2d(groups_width, groups_width, 3, stride, 1, groups=config.cardinality, bias=False)
        self.bn = nn.BatchNorm2d(groups_width)
        self.conv_expand = nn.Conv2d(groups_width, out_channels, 1, bias=False)
        self.bn_expand = nn.BatchNorm2d(out_channels)
        self.shortcut = nn.Sequential()
        if in_channels != out_channels or stride != 1:
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                                          nn.BatchNorm2d(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn_reduce(self.conv_reduce(x)))
        y = F.relu(self.bn(self.conv_conv(y)))
        y = self.bn_expand(self.conv_expand(y))
        return F.relu(self.shortcut(x) + y)


class ResNeXt(nn.Module):
    """(B, C, H, W) images -> (B, num_classes) logits; `features` gives the pooled penultimate layer."""

    def __init__(self, config: ResNeXtConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or ResNeXtConfig()
        if (config.depth - 2) % 9 != 0 or config.depth < 11:
            raise ValueError(f"ResNeXt depth must be 9k + 2 with k >= 1 (29 for ResNeXt-29), got {config.depth}")
        blocks_per_stage = (config.depth - 2) // 9
        stem, *widths = config.stage_widths
        self.conv_1_3x3 = nn.Conv2d(config.in_channels, stem, 3, 1, 1, bias=False)
        self.bn_1 = nn.BatchNorm2d(stem)
        stages, in_channels = [], stem
        for i, (width, stride) in enumerate(zip(widths, (1, 2, 2))):
            blocks = [ResNeXtBottleneck(in_channels if k == 0 else width, width, stride if k == 0 else 1, config)
                      for k in range(blocks_per_stage)]
            stages.append(nn.Sequential(*blocks))
            in_channels = width
        self.stage_1, self.stage_2, self.stage_3 = stages
        self.classifier = nn.Linear(in_channels, config.num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    @property
    def feature_size(self) -> int:
        """Width of the penultimate features (1024 for ResNeXt-29 8x64d)."""
        return self.classifier.in_features

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, feature_size): the activations FID and NDB compare."""
        x = F.relu(self.bn_1(self.conv_1_3x3(images)))
        x = self.stage_3(self.stage_2(self.stage_1(x)))  # (B, 1024, H/4, W/4)
        return x.mean(dim=(2, 3))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(images))
