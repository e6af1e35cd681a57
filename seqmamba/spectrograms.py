"""A sheet of spectrograms: how a person judges generated audio at a glance, beside real clips."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")  # files only, never a window
import matplotlib.pyplot as plt  # noqa: E402


def spectrogram_sheet(groups: dict[str, list[np.ndarray]], out_png: Path, sample_rate: int = 16000,
                      columns: int = 4) -> Path:
    """One block of log-power spectrograms per group (e.g. {"generated": [...], "real": [...]}), side by side."""
    rows = max(1, max((len(clips) + columns - 1) // columns for clips in groups.values()))
    fig, axes = plt.subplots(rows, columns * len(groups), figsize=(2.2 * columns * len(groups), 1.8 * rows + 0.6),
                             squeeze=False)
    for g, (name, clips) in enumerate(groups.items()):
        for k in range(rows * columns):
            ax = axes[k // columns, g * columns + k % columns]
            ax.set_xticks([])
            ax.set_yticks([])
            if k < len(clips):
                window = min(256, len(clips[k]) // 2)
                ax.specgram(np.asarray(clips[k], dtype=np.float64) + 1e-7, NFFT=window, noverlap=3 * window // 4,
                            Fs=sample_rate, cmap="magma")
            else:
                ax.axis("off")
        axes[0, g * columns].set_title(f"{name} ({len(clips)})", loc="left", fontsize=10)
    fig.tight_layout()
    fig.savefig(out_png, dpi=100)
    plt.close(fig)
    return Path(out_png)
