"""The SC09 digit classifier's parts: ResNeXt shapes and size, augmentation, class-balanced sampling, data checks."""

import numpy as np
import pytest
import torch

from seqmamba.errors import InputError
from seqmamba.nn.resnext import ResNeXt, ResNeXtConfig
from seqmamba.tasks.digit_classifier import (BalancedClips, Clips, DigitClassifierTask, DigitDataModule, augment,
                                             change_speed)

TINY = ResNeXtConfig(depth=11, cardinality=2, base_width=4, widen_factor=1, stem_width=8)


def test_resnext29_8x64d_has_the_protocols_size_and_1024_d_features():
    net = ResNeXt()
    assert net.feature_size == 1024
    assert sum(p.numel() for p in net.parameters()) == pytest.approx(34.4e6, rel=0.01)  # ResNeXt-29 8x64d
    assert net.stage_1[0].conv_conv.groups == 8 and net.stage_1[0].conv_conv.out_channels == 8 * 64


def test_tiny_resnext_maps_mel_images_to_features_and_logits():
    net = ResNeXt(TINY).eval()
    images = torch.randn(3, 1, 32, 32)
    assert net.features(images).shape == (3, 256)
    assert net(images).shape == (3, 10)
    with pytest.raises(ValueError, match="9k \\+ 2"):
        ResNeXt(ResNeXtConfig(depth=12))


def test_augment_shifts_with_zero_fill_scales_and_stays_in_range():
    clips = torch.rand(8, 100, generator=torch.Generator().manual_seed(0)) * 2 - 1
    def draws(seed: int = 0) -> torch.Generator:
        return torch.Generator().manual_seed(seed)
    assert torch.equal(augment(clips, max_shift=0, gain_db=0.0, noise_level=0.0, generator=draws()), clips)
    shifted = augment(clips, max_shift=5, gain_db=0.0, noise_level=0.0, generator=draws())
    for clip, out in zip(clips, shifted):
        candidates = [torch.cat([torch.zeros(s), clip[:100 - s]]) if s >= 0 else torch.cat([clip[-s:], torch.zeros(-s)])
                      for s in range(-5, 6)]
        assert any(torch.equal(out, c) for c in candidates)
    loud = augment(clips, max_shift=0, gain_db=20.0, noise_level=0.5, generator=draws())
    assert loud.abs().max() <= 1.0 and not torch.equal(loud, clips)
    torch.manual_seed(1)  # the global RNG plays no part: the same generator seed gives the same clips
    again = augment(clips, max_shift=5, gain_db=20.0, noise_level=0.5, generator=draws(3))
    torch.manual_seed(2)
    assert torch.equal(again, augment(clips, max_shift=5, gain_db=20.0, noise_level=0.5, generator=draws(3)))


def test_balanced_clips_draw_classes_equally_and_redraw_per_epoch():
    labels = np.repeat(np.arange(10), [500] + [50] * 9)  # class 0 is 10x more common
    clips = Clips(np.arange(len(labels), dtype=np.float32)[:, None], labels)  # each clip's sample is its index

    def epoch(number: int) -> tuple[list[int], list[int]]:
        items = [BalancedClips(clips, seed=0, epoch=number)[i] for i in range(len(labels))]
        return [int(item["waveforms"][0]) for item in items], [int(item["seeds"]) for item in items]

    first, seeds = epoch(0)
    counts = np.bincount(labels[first], minlength=10)
    assert len(first) == len(labels) and np.all(np.abs(counts - 95) < 4 * np.sqrt(95))
    assert epoch(0) == (first, seeds)  # same epoch, same draws and augmentation seeds (resumable)
    assert epoch(1)[0] != first and len(set(seeds)) == len(seeds)


def test_data_module_refuses_a_folder_that_is_not_sc09(tmp_path):
    (tmp_path / "zero").mkdir()
    with pytest.raises(InputError, match="not an SC09 folder"):
        DigitDataModule(str(tmp_path)).setup("fit")
    with pytest.raises(ValueError, match="batch_size"):
        DigitDataModule(str(tmp_path), batch_size=0)


def test_task_refuses_settings_it_cannot_train_with():
    with pytest.raises(ValueError, match="lr must be positive.*momentum must lie in"):
        DigitClassifierTask(resnext=TINY, lr=0.0, momentum=1.5)


def test_change_speed_moves_pitch_within_the_range_and_keeps_the_centre():
    t = torch.arange(16000) / 16000
    tone = torch.sin(2 * torch.pi * 440 * t + 0.3).repeat(64, 1)  # (B, T)
    changed = change_speed(tone, 0.25, torch.Generator().manual_seed(0))
    crossings = ((changed[:, 4000:12000] > 0).diff(dim=1) != 0).sum(dim=1).float()  # the middle half
    hertz = crossings / 2 / 0.5
    assert hertz.min() >= 440 / 1.25 - 5 and hertz.max() <= 440 * 1.25 + 5 and hertz.std() > 10
    torch.testing.assert_close(changed[:, 7999:8001].mean(1), tone[:, 7999:8001].mean(1), atol=0.05, rtol=0)
    assert changed.abs().max() <= 1
    torch.manual_seed(1)  # the global RNG plays no part: the same generator seed gives the same factors
    again = change_speed(tone, 0.25, torch.Generator().manual_seed(0))
    assert torch.equal(again, changed)
