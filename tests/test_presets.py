"""Presets compose and package defaults ship inside the package."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import pytest
import yaml

from seqmamba.commands.sc09 import DEFAULT_CLASSIFIER_CONFIG
from seqmamba.data.fetch import load_manifest

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
RECIPES = sorted([*CONFIGS.glob("dna/*-1.4m.yaml"), *CONFIGS.glob("dna/*-7m.yaml"), *CONFIGS.glob("species/*.yaml")])


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda path: path.name)
def test_recipes_name_their_model_preset_instead_of_copying_sizes(recipe):
    backbone = yaml.safe_load(recipe.read_text())["model"]["backbone"]
    size = re.search(r"-(1\.4m|7m)\.yaml$", recipe.name)[1]
    assert backbone == f"../models/mamba-{size}.yaml" and (recipe.parent / backbone).is_file()


def test_package_defaults_are_package_data():
    package = resources.files("seqmamba")
    assert DEFAULT_CLASSIFIER_CONFIG == Path(str(package / "presets" / "sc09-classifier.yaml"))
    assert yaml.safe_load(DEFAULT_CLASSIFIER_CONFIG.read_text())["model"]["resnext"]["depth"] == 29
    for name in ("hg38", "sc09", "youtubemix"):
        assert Path(load_manifest(name).path).is_relative_to(Path(str(package)))
