"""Parameter counts of the audio presets and of the Table 5 outer x center grid, beside the paper's sizes.

    python -m pipelines.audio.param_counts
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import yaml

from seqmamba.nn.sashimi import Sashimi, SashimiConfig

PAPER_MILLIONS = {"sc09-mamba-6m": 6.1, "sc09-mamba-24m": 24.3, "youtubemix-mamba-3.5m": 3.5}
GRID_OUTER = {"mamba": {"d_state": 16}, "complex-mamba": {"d_state": 8}, "s4d+mlp": {}}
GRID_CENTER = ("mamba", "complex-mamba", "s4d+mlp", "attention+mlp")


def count(fields: dict) -> int:
    """Parameters of the U-Net these fields describe (built on the meta device: no memory, no time)."""
    with torch.device("meta"):
        return Sashimi(SashimiConfig(**fields)).num_parameters()


def main() -> None:
    report = {}
    for preset, paper in PAPER_MILLIONS.items():
        fields = yaml.safe_load(Path(f"configs/audio/{preset}.yaml").read_text())["model"]["unet"]
        report[preset] = {"parameters": count(fields), "paper_millions": paper}
    base = yaml.safe_load(Path("configs/audio/sc09-table5.yaml").read_text())["model"]["unet"]
    for outer, extra in GRID_OUTER.items():
        for center in GRID_CENTER:
            fields = base | extra | {"outer": outer, "center": center}
            report[f"table5 {outer}/{center}"] = {"parameters": count(fields)}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
