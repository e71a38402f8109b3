"""dvc.yaml lists, for every stage, every project module the stage imports, and only params that exist."""

import re

import yaml

from tests.conftest import ROOT
from tests.imports import project_imports

DVC = yaml.safe_load((ROOT / "dvc.yaml").read_text())
PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())


def stage_module(cmd: str) -> str:
    return re.search(r"-m (stages\.\w+)", cmd).group(1)


def test_every_stage_lists_the_modules_it_imports():
    for name, stage in DVC["stages"].items():
        body = stage.get("do", stage)
        listed = {d for d in body["deps"] if d.endswith(".py")}
        needed = project_imports(stage_module(body["cmd"]))
        assert listed == needed, f"{name}: missing {sorted(needed - listed)}, extra {sorted(listed - needed)}"


def test_every_listed_param_exists():
    for name, stage in DVC["stages"].items():
        body = stage.get("do", stage)
        for key in body.get("params", []):
            node = PARAMS
            for part in key.replace("${key}", "m1").split("."):
                assert isinstance(node, dict) and part in node, f"{name}: params key {key} not in params.yaml"
                node = node[part]


def test_beta_is_a_top_level_param():
    assert isinstance(PARAMS["beta"], float)
