"""The DVC workflows the README promises, on the tiny configuration: one iteration at a time with
`dvc metrics diff` between the commits, and a team's shared cache (push, a fresh clone, pull, nothing to
rerun)."""

import json
import os
import re
import shutil
import subprocess

import pytest
import yaml

from tests.conftest import ROOT, copy_project, dvc, git
from tests.test_pipeline_e2e import ran

pytestmark = pytest.mark.slow


def test_one_iteration_at_a_time_then_metrics_diff(tmp_path):
    """Commit after general-m1; add general-m2 to params.yaml; `dvc repro` runs only general-m2's stages (and the
    summary), and `dvc metrics diff` shows general-m1 -> general-m2 on the same keys of the newest-iteration file."""
    (tmp_path / "project").mkdir()
    project = copy_project(tmp_path / "project")
    params = yaml.safe_load((ROOT / "tests" / "fixtures" / "tiny_params.yaml").read_text())
    m2 = params["iterations"].pop("general-m2")
    params["eval"]["models"].remove("general-m2")
    del params["eval"]["iterations"]["general-m2"]
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    git(project, "init", "-q")
    git(project, "add", "-A")
    git(project, "commit", "-qm", "tiny, general-m1 only")
    first = ran(dvc(project, "repro"))
    assert "train@general-m1" in first and not any(s.endswith("@general-m2") for s in first)
    before = json.loads((project / "metrics/summary.json").read_text())
    assert before["iteration"] == 1
    git(project, "add", "-A")
    git(project, "commit", "-qm", "general-m1")

    params["iterations"]["general-m2"] = m2
    params["eval"]["models"].append("general-m2")
    params["eval"]["iterations"]["general-m2"] = "general-m1"
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    second = ran(dvc(project, "repro"))
    stages = ("sample", "translate_prompts", "generate", "translate_responses", "pair", "filter", "train")
    stages += ("eval", "judge", "likelihood", "compare", "head_to_head", "preference", "card")
    assert {f"{s}@general-m2" for s in stages} | {"summarize"} == second
    after = json.loads((project / "metrics/summary.json").read_text())
    assert after["iteration"] == 2 and set(after) == set(before)
    diff = json.loads(dvc(project, "metrics", "diff", "--json"))
    changes = diff["metrics/summary.json"]
    assert changes["iteration"] == {"old": 1, "new": 2, "diff": 1}
    assert set(changes) <= set(after)


def link_if_read_only(src, dst):
    """Hard-link what DVC protects (its cache and the outputs linked to it, all read-only), copy the rest: the
    copy's checkpoints take no new space, and a file DVC or git rewrites in place is the copy's own."""
    if os.stat(src).st_mode & 0o222:
        return shutil.copy2(src, dst)
    os.link(src, dst)
    return dst


def test_a_shared_cache_round_trip(tiny_project, tmp_path):
    """`dvc push` to a local-directory remote, a fresh `git clone`, `dvc pull`: `dvc status` is clean and
    `dvc repro` runs nothing."""
    project = tmp_path / "project"
    shutil.copytree(tiny_project.path, project, symlinks=True, copy_function=link_if_read_only)
    remote = tmp_path / "remote"
    dvc(project, "remote", "add", "-d", "team", str(remote))
    dvc(project, "push")
    assert any(remote.rglob("*"))
    git(project, "add", "-A")
    git(project, "commit", "-qm", "tiny run, with its remote")

    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(project), str(clone)], check=True, capture_output=True)
    assert not (clone / "models" / "general-m1").exists()
    dvc(clone, "pull")
    assert (clone / "models" / "general-m2" / "model.safetensors").exists()
    status = dvc(clone, "status")
    assert re.search(r"up to date", status), status
    assert ran(dvc(clone, "repro")) == set()
