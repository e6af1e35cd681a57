"""A sheet of spectrograms: how a person judges generated audio at a glance, beside real clips."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")  # files only, never a window
import matplotlib.pyplot as plt  # noqa: E402


def spectrogram_sheet(groups: dict[str, list[np.ndarray]], out_png: Path, sample_rate: int = 16000,
                      columns: int = 4, titles: dict[str, list[str]] | None = None) -> Path:
    """One block of log-power spectrograms per group (e.g. {"generated": [...], "real": [...]}), side by side.

    titles[group][k] names panel k (its file and log-likelihood, say); every panel has time (s) and
    frequency (kHz) axes, labelled on the outer panels.
    """
    titles = titles or {}
    rows = max(1, max((len(clips) + columns - 1) // columns for clips in groups.values()))
    fig, axes = plt.subplots(rows, columns * len(groups), figsize=(2.4 * columns * len(groups), 2.0 * rows + 0.8),
                             squeeze=False, sharex=True, sharey=True)
    for g, (name, clips) in enumerate(groups.items()):
        names = titles.get(name, [])
        for k in range(rows * columns):
            row, column = k // columns, g * columns + k % columns
            ax = axes[row, column]
            if k >= len(clips):
                ax.axis("off")
                continue
            window = min(256, len(clips[k]) // 2)
            floor = 1e-6 * np.random.default_rng(k).standard_normal(len(clips[k]))  # digital silence has no log
            ax.specgram(np.asarray(clips[k], dtype=np.float64) + floor, NFFT=window, noverlap=3 * window // 4,
                        Fs=sample_rate, cmap="magma")
            ax.set_yticks(np.arange(0, sample_rate / 2 + 1, 2000), [f"{f / 1000:g}" for f in
                                                                     np.arange(0, sample_rate / 2 + 1, 2000)])
            ax.tick_params(labelsize=6)
            if k < len(names):
                ax.set_title(names[k], fontsize=6)
            if column == 0:
                ax.set_ylabel("kHz", fontsize=7)
            if row == rows - 1 or k + columns >= len(clips):
                ax.set_xlabel("time (s)", fontsize=7)
        fig.text((g * columns + 0.05) / (columns * len(groups)), 0.995, f"{name} ({len(clips)})", fontsize=10,
                 va="top")
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    fig.savefig(out_png, dpi=100)
    plt.close(fig)
    return Path(out_png)
