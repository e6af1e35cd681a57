"""The SC09 protocol's classifier input: 1 s at 16 kHz -> a 1 x 32 x 32 log-mel image.

`MelFeatures` computes librosa's `melspectrogram` (n_fft 2048, hop 512, 32 slaney mel bands, hann,
centred with zero padding) and `power_to_db(ref=np.max, top_db=80)` in PyTorch, batched on any
device, with librosa's own filter bank; tests hold it equal to librosa.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import librosa
import numpy as np
import torch
import torch.nn as nn

from seqmamba.data.audio_io import load_audio

AMIN = 1e-10  # librosa.power_to_db's floor on power


@dataclass
class MelSettings:
    """What a clip is turned into before the classifier sees it; stored in the classifier's checkpoint."""

    sample_rate: int = 16000
    clip_samples: int = 16000  # clips are zero-padded or cut to this length
    n_mels: int = 32
    n_fft: int = 2048
    hop_length: int = 512
    top_db: float = 80.0

    def __post_init__(self) -> None:
        """Settings no mel image can be made with, each named by its field."""
        for name in ("sample_rate", "clip_samples", "n_mels", "n_fft", "hop_length"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not self.top_db > 0:
            raise ValueError(f"top_db must be positive, got {self.top_db}")

    @property
    def frames(self) -> int:
        """Mel frames per clip (centred STFT)."""
        return 1 + self.clip_samples // self.hop_length


class MelFeatures(nn.Module):
    """(B, T) waveforms in [-1, 1] -> (B, 1, n_mels, frames) dB below each clip's loudest bin, floored at -top_db."""

    def __init__(self, settings: MelSettings | None = None) -> None:
        super().__init__()
        self.settings = settings = settings or MelSettings()
        mel_basis = librosa.filters.mel(sr=settings.sample_rate, n_fft=settings.n_fft, n_mels=settings.n_mels)
        self.register_buffer("mel_basis", torch.from_numpy(mel_basis).float(), persistent=False)  # (M, F)
        self.register_buffer("window", torch.hann_window(settings.n_fft), persistent=False)  # periodic, as librosa

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        s = self.settings
        with torch.autocast(device_type=waveforms.device.type, enabled=False):
            spectrum = torch.stft(waveforms.float(), s.n_fft, hop_length=s.hop_length, window=self.window,
                                  center=True, pad_mode="constant", return_complex=True)  # (B, F, frames)
            mel = self.mel_basis @ spectrum.abs().square()  # (B, M, frames)
            db = 10 * torch.log10(mel.clamp_min(AMIN))
            db = db - db.amax(dim=(1, 2), keepdim=True)  # ref = the clip's maximum power
            return db.clamp_min(-s.top_db).unsqueeze(1)  # (B, 1, M, frames)


def load_clip(path: str | Path, settings: MelSettings) -> np.ndarray:
    """The protocol's clip: decoded at the settings' rate, mono, zero-padded or cut to clip_samples, (T,) float32."""
    return librosa.util.fix_length(load_audio(path, settings.sample_rate), size=settings.clip_samples)
