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
            key = key.replace("${key}", "general-m1").replace("${item.chain}", "general").replace("${item}", "m0")
            for part in key.split("."):
                assert isinstance(node, dict) and part in node, f"{name}: params key {key} not in params.yaml"
                node = node[part]


def test_beta_is_a_top_level_param():
    assert isinstance(PARAMS["beta"], float)


def _lock_params_disagreeing(lock: dict, params: dict) -> list[str]:
    """Each `stage: key` whose value in dvc.lock differs from params.yaml's (a missing key counts)."""
    bad = []
    for name, stage in lock.get("stages", {}).items():
        for key, value in stage.get("params", {}).get("params.yaml", {}).items():
            node = params
            for part in key.split("."):
                node = node.get(part, KeyError) if isinstance(node, dict) else KeyError
            if node != value:
                bad.append(f"{name}: {key}")
    return bad


def foreach_values(foreach):
    """What a `foreach` of dvc.yaml iterates over: `${a.b}` in params.yaml, or a literal dict or list (a dict's keys
    or a list's items)."""
    if not isinstance(foreach, str):
        return foreach
    node = PARAMS
    for part in re.fullmatch(r"\$\{([\w.]+)\}", foreach).group(1).split("."):
        node = node[part]
    return node


def test_every_model_is_evaluated_and_judged_by_one_definition():
    """m0 and the evaluated iterations share the eval, likelihood and judge stages; the comparisons with m0 are per
    evaluated iteration; every iteration is trained."""
    for name in ("eval", "likelihood", "judge"):
        assert DVC["stages"][name]["foreach"] == "${eval.models}", name
    evaluated = foreach_values("${eval.models}")
    assert "m0" in evaluated and set(evaluated) <= {"m0", *PARAMS["iterations"]}
    for name in ("compare", "head_to_head", "preference", "card"):
        assert DVC["stages"][name]["foreach"] == "${eval.iterations}", name
    assert set(foreach_values("${eval.iterations}")) == set(evaluated) - {"m0"}
    assert DVC["stages"]["train"]["foreach"] == "${iterations}"
    assert not {"eval_m0", "judge_m0"} & set(DVC["stages"])


def test_the_committed_reference_run_used_the_committed_params():
    """dvc.lock (the reference run, committed with its metrics) was made with params.yaml as it is: a change
    to the default run refreshes the reference in the same commit."""
    lock = yaml.safe_load((ROOT / "dvc.lock").read_text())
    stages = set(lock["stages"])
    expected = {
        f"{name}@{it}" if "foreach" in stage else name
        for name, stage in DVC["stages"].items()
        for it in (foreach_values(stage["foreach"]) if "foreach" in stage else [None])
    }
    assert stages == expected, f"missing {sorted(expected - stages)}, extra {sorted(stages - expected)}"
    assert _lock_params_disagreeing(lock, PARAMS) == []


def test_a_lock_with_other_params_is_caught():
    lock = {"stages": {"train@m1": {"params": {"params.yaml": {"beta": 0.1, "train.lora.r": 16}}}}}
    params = {"beta": 0.5, "train": {"lora": {"r": 16}}}
    assert _lock_params_disagreeing(lock, params) == ["train@m1: beta"]
    lock["stages"]["train@m1"]["params"]["params.yaml"]["train.lora.alpha"] = 32
    assert _lock_params_disagreeing(lock, params) == ["train@m1: beta", "train@m1: train.lora.alpha"]


def test_both_chains_expand_into_their_own_stages_and_either_runs_alone(tmp_path):
    """With the 8B recipe's params (both chains), dvc.yaml gives every stage of each chain a name that says the
    chain, and the stages upstream of one chain's last model card belong to that chain and the shared blocks."""
    import shutil

    from tests.conftest import dvc

    shutil.copy(ROOT / "dvc.yaml", tmp_path / "dvc.yaml")
    shutil.copy(ROOT / "configs" / "llama3-8b" / "params.yaml", tmp_path / "params.yaml")
    dvc(tmp_path, "init", "--no-scm", "-q")
    names = set(dvc(tmp_path, "stage", "list", "--name-only").split())
    for chain in ("general", "math"):
        assert {
            f"{s}@{chain}-m{k}" for s in ("sample", "translate_prompts", "train", "eval", "card") for k in (1, 2)
        } <= names
    assert {n for n in names if re.search(r"@m\d", n)} == {"eval@m0", "judge@m0", "likelihood@m0"}  # in no chain
    upstream = set(re.findall(r"[\w@-]+", dvc(tmp_path, "dag", "--md", "card@math-m2")))
    assert {"train@math-m1", "train@math-m2", "eval@math-m2", "prepare_model"} <= upstream
    assert not any("general" in n for n in upstream), sorted(n for n in upstream if "general" in n)


PAIR_MAKING = ("sample", "translate_prompts", "generate", "translate_responses", "pair", "filter")


def test_the_pair_making_block_is_defined_once():
    """Each pair-making stage has one definition: the held-out block's stage is the iterations' stage (a YAML
    alias), run for the one block of chains.heldout, from m0, which no iteration trains on."""
    raw = (ROOT / "dvc.yaml").read_text()
    for name in PAIR_MAKING:
        assert DVC["stages"][f"heldout_{name}"]["do"] is DVC["stages"][name]["do"], name
        assert DVC["stages"][name]["foreach"] == "${iterations}", name
        assert raw.count(f"python -m stages.{name} ") == 1, name
        assert foreach_values(DVC["stages"][f"heldout_{name}"]["foreach"]) == {
            "heldout": {"chain": "heldout", "start": "m0", "round": 0}
        }
    assert "heldout" in PARAMS["chains"]
    assert all(it["chain"] != "heldout" for it in PARAMS["iterations"].values())
