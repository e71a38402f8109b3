"""The DVC commands README.md and docs/dvc.md show print a readable table: exit 0, at most 120 columns.

Run in the project itself, on the committed reference run's metrics (a fresh clone holds them). The width is
the table's own (DVC writes it whole when its output is not a terminal), so a table that fits here fits a
120-column terminal without DVC cutting columns to "…".
"""

import os
import shlex
import subprocess
import sys

import pytest

from tests.conftest import ROOT

WIDTH = 120

# as the docs write them
DOCUMENTED = (
    "dvc metrics show",
    "dvc metrics show -R metrics/headline",
    "dvc exp show --only-changed --drop 'Created|State|Executor|.*/' --keep goal_",
    "dvc stage list",
    "dvc dag --md",
)


def run(command: str, cwd=ROOT) -> str:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "COLUMNS": str(WIDTH)}
    args = shlex.split(command)
    assert args[0] == "dvc"
    proc = subprocess.run([sys.executable, "-m", "dvc", *args[1:]], cwd=cwd, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, f"{command}: exit {proc.returncode}\n{proc.stderr[-2000:]}"
    return proc.stdout


def width(text: str) -> int:
    return max((len(line.rstrip()) for line in text.splitlines()), default=0)


def test_the_documented_commands_are_the_ones_the_docs_show():
    docs = (ROOT / "README.md").read_text() + (ROOT / "docs" / "dvc.md").read_text()
    for command in DOCUMENTED:
        assert command in docs, command


@pytest.mark.skipif(not (ROOT / ".git").exists(), reason="needs the project's git checkout")
@pytest.mark.parametrize("command", DOCUMENTED)
def test_a_documented_command_fits_120_columns(command):
    out = run(command)
    assert out.strip(), command
    assert width(out) <= WIDTH, f"{command}: {width(out)} columns\n{out}"


@pytest.mark.skipif(not (ROOT / ".git").exists(), reason="needs the project's git checkout")
def test_the_experiment_table_shows_the_rule_and_the_stages_list_shows_every_stage():
    table = run("dvc exp show --only-changed --drop 'Created|State|Executor|.*/' --keep goal_")
    assert all(key in table for key in ("goal_a", "goal_b", "goal_c"))
    stages = run("dvc stage list")
    assert "summarize" in stages and "train@general-m1" in stages and "Outputs" not in stages  # each has a desc


ITERATIONS_DIFF = (
    "dvc metrics diff $(git rev-parse --short ':/^Reference run, iteration 1 of 2') "
    "$(git rev-parse --short ':/^Reference run, iteration 2 of 2')"
)


def shallow() -> bool:
    proc = subprocess.run(["git", "rev-parse", "--is-shallow-repository"], cwd=ROOT, capture_output=True, text=True)
    return proc.returncode != 0 or proc.stdout.strip() != "false"


@pytest.mark.skipif(shallow(), reason="needs the project's full git history")
def test_the_history_shows_one_iteration_at_a_time():
    assert ITERATIONS_DIFF in (ROOT / "docs" / "dvc.md").read_text()
    env = {
        **os.environ,
        "DVC_NO_ANALYTICS": "1",
        "PATH": f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}",
    }
    proc = subprocess.run(["bash", "-c", ITERATIONS_DIFF], cwd=ROOT, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    rows = {line.split()[1]: line.split()[2:4] for line in proc.stdout.splitlines()[1:]}
    assert rows["iteration"] == ["1", "2"]  # general-m1, then general-m2
    assert width(proc.stdout) <= WIDTH
