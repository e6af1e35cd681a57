"""One check shared by the model config dataclasses: a width, depth or count below 1 is refused by name."""

from __future__ import annotations

import dataclasses


def check_sizes(config: object) -> None:
    """Every int field of a config dataclass is at least 1, so a bad size fails here and not deep inside torch."""
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if field.type in ("int", int) and isinstance(value, int) and not isinstance(value, bool) and value < 1:
            raise ValueError(f"{type(config).__name__}.{field.name} must be at least 1, got {value}")
