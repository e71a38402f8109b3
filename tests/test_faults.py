"""Fault injection: each reliability promise is broken on purpose and the outcome checked.

Faults tried: stages killed with SIGTERM and SIGKILL part-way through generation (rerun resumes and
gives the bytes of an uninterrupted run), a torn journal line, a crash mid-write (no file at the
output path; an older file untouched), malformed params, JSONL, TSV and empty inputs (one clear
line naming file and line, exit 2, no traceback), a hub id while offline (a clear error, no hang),
a model that needs its own code (refused unless params allow it), pickle-only weights (refused).

    python -m pytest -q tests/test_faults.py
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from lidr import stage
from lidr.config import PromptSource, load_params
from lidr.data import load_mgsm, load_source
from lidr.errors import DataError, ModelError, ParamsError
from lidr.generate import generate
from lidr.io import atomic_path, write_jsonl
from lidr.model import load_causal_lm
from tests.conftest import ROOT
from tests.test_generate import DECODING, REQUESTS, FakeBackend

TINY = yaml.safe_load((ROOT / "tests/fixtures/tiny_params.yaml").read_text())
N_PROMPTS = 16


def write_params(path: Path, **sections) -> Path:
    data = json.loads(json.dumps(TINY))
    for dotted, value in sections.items():
        *keys, last = dotted.split("__")
        node = data
        for k in keys:
            node = node[k]
        node[last] = value
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def stage_env(journal: Path, **extra: str) -> dict:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "LIDR_JOURNAL_DIR": str(journal),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "CUDA_VISIBLE_DEVICES": "",
        "TOKENIZERS_PARALLELISM": "false",
        **extra,
    }
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    return env


def journal_lines(journal: Path) -> int:
    return sum(len(f.read_bytes().splitlines()) for f in journal.glob("*.jsonl")) if journal.exists() else 0


# ---------------------------------------------------------------------------------------------
# Resumable generation: the real stage, killed part-way


class Generation:
    def __init__(self, root: Path, model: Path):
        self.root = root
        self.params = write_params(
            root / "params.yaml",
            generation__batch_size=1,
            generation__chunk_size=1,
            generation__max_new_tokens=48,
            generation__threads=1,
        )
        self.prompts = root / "prompts.jsonl"
        write_jsonl(
            self.prompts,
            [
                {
                    "id": f"p{i}",
                    "kind": "general",
                    "lang": "en",
                    "ok": True,
                    "text": f"Tell me fact number {i} about " + "rivers and seas " * (i % 5),
                    "origin": "source",
                    "error": None,
                    "finish_reason": None,
                }
                for i in range(N_PROMPTS)
            ],
        )
        self.model = model

    def command(self, out: Path) -> list[str]:
        return [
            sys.executable,
            "-m",
            "stages.generate",
            "--params",
            str(self.params),
            "--model",
            str(self.model),
            "--prompts",
            str(self.prompts),
            "--out",
            str(out / "responses.jsonl"),
            "--meta",
            str(out / "responses.meta.json"),
            "--cost",
            str(out / "cost.json"),
        ]


@pytest.fixture(scope="module")
def generation(tmp_path_factory, tiny_model):
    gen = Generation(tmp_path_factory.mktemp("generation"), tiny_model)
    ref = gen.root / "reference"
    proc = subprocess.run(
        gen.command(ref),
        cwd=ROOT,
        env=stage_env(gen.root / "journal-ref"),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    gen.reference = ref
    return gen


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_a_killed_generation_stage_resumes_to_the_bytes_of_an_uninterrupted_run(sig, generation, tmp_path):
    journal, out = tmp_path / "journal", tmp_path / "out"
    with (tmp_path / "stderr").open("w") as err:
        proc = subprocess.Popen(
            generation.command(out), cwd=ROOT, env=stage_env(journal), stdout=subprocess.DEVNULL, stderr=err
        )
        try:
            deadline = time.monotonic() + 600
            while journal_lines(journal) < 1:
                assert proc.poll() is None, "the stage ended before its first batch reached the journal"
                assert time.monotonic() < deadline, "no batch reached the journal"
                time.sleep(0.01)
            proc.send_signal(sig)
            proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == -sig
    finished = journal_lines(journal)
    assert 1 <= finished < N_PROMPTS, "killed part-way"
    assert not (out / "responses.jsonl").exists() and not (out / "responses.meta.json").exists()

    rerun = subprocess.run(
        generation.command(out), cwd=ROOT, env=stage_env(journal), capture_output=True, text=True, timeout=600
    )
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    for name in ("responses.jsonl", "responses.meta.json"):
        assert (out / name).read_bytes() == (generation.reference / name).read_bytes(), name
    assert journal_lines(journal) == N_PROMPTS, "batches finished before the kill were not generated again"
    meta = json.loads((out / "responses.meta.json").read_text())
    assert meta["backend"] == "transformers" and {"torch", "transformers"} <= set(meta["versions"])


def test_a_torn_journal_line_is_cut_so_the_next_append_stays_readable(tmp_path, monkeypatch):
    import lidr.generate

    journal = tmp_path / "journal"
    monkeypatch.setattr(lidr.generate, "JOURNAL_DIR", journal)
    expected = generate(FakeBackend(), REQUESTS, DECODING, model_dir=tmp_path, journal=False)
    with pytest.raises(KeyboardInterrupt):
        generate(FakeBackend(fail_after=1), REQUESTS, DECODING, model_dir=tmp_path)
    (path,) = journal.glob("*.jsonl")
    with path.open("a") as f:
        f.write('{"key": "abc", "completion": {"te')  # a kill in the middle of a write
    second = FakeBackend()
    assert generate(second, REQUESTS, DECODING, model_dir=tmp_path) == expected
    lines = path.read_text().splitlines()
    assert all(json.loads(line)["key"] for line in lines) and len(lines) == 5
    third = FakeBackend()
    assert generate(third, REQUESTS, DECODING, model_dir=tmp_path) == expected and third.batches == []


# ---------------------------------------------------------------------------------------------
# Atomic outputs


def test_a_crash_mid_write_leaves_no_file_and_keeps_the_old_one(tmp_path):
    out = tmp_path / "pairs.jsonl"

    def records():
        yield {"id": "a"}
        raise MemoryError("out of memory while writing")

    with pytest.raises(MemoryError):
        write_jsonl(out, records())
    assert list(tmp_path.iterdir()) == []
    write_jsonl(out, [{"id": "old"}])
    with pytest.raises(MemoryError):
        write_jsonl(out, records())
    assert out.read_text() == '{"id": "old"}\n' and list(tmp_path.iterdir()) == [out]


def test_a_model_folder_interrupted_while_saving_is_never_in_place(tmp_path):
    out = tmp_path / "models" / "m1"
    with pytest.raises(KeyboardInterrupt), atomic_path(out, directory=True) as tmp:
        (tmp / "config.json").write_text("{}")
        raise KeyboardInterrupt
    assert not out.exists() and list(out.parent.iterdir()) == []


# ---------------------------------------------------------------------------------------------
# Bad params: the check command, and a stage that stops before any model loads


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"betta": 0.1}, "unknown key betta"),
        ({"generation__batch_size": "eight"}, "generation.batch_size: expected int, got 'eight'"),
        ({"generation__repetition_penalty": 5.0}, "generation.repetition_penalty: expected 1.0 to 2.0"),
        ({"languages__others": ["es", "xx"]}, "languages.others[1]: unknown language code 'xx'"),
        ({"model__base": "./models/missing"}, "model.base: './models/missing' is neither"),
        (
            {"iterations__general-m2": {"chain": "general", "start": "m7", "round": 1}},
            "iterations.general-m2.start: model 'm7' does not exist",
        ),
    ],
)
def test_check_command_names_the_key(change, message, tmp_path, capsys):
    from lidr.check import main

    params = write_params(tmp_path / "params.yaml", **change)
    assert main(["--params", str(params)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {params}: ") and message in err and err.count("\n") == 1


def test_check_command_accepts_the_default_params(capsys):
    from lidr.check import main

    assert main(["--params", str(ROOT / "params.yaml")]) == 0
    assert "params.yaml: ok" in capsys.readouterr().out


def test_a_stage_with_bad_params_exits_2_with_one_line_before_loading_a_model(tmp_path):
    params = write_params(tmp_path / "params.yaml", generation__max_new_tokens=-3)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "stages.generate",
            "--params",
            str(params),
            "--model",
            str(tmp_path / "no-model"),
            "--prompts",
            str(tmp_path / "none.jsonl"),
            "--out",
            str(tmp_path / "r.jsonl"),
            "--meta",
            str(tmp_path / "m.json"),
            "--cost",
            str(tmp_path / "c.json"),
        ],
        cwd=ROOT,
        env=stage_env(tmp_path / "journal"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2
    assert proc.stderr == f"error: {params}: generation.max_new_tokens: expected a value > 0, got -3\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]


def test_malformed_params_yaml_names_the_line(tmp_path):
    bad = tmp_path / "params.yaml"
    bad.write_text("seed: 0\nbeta: [0.5\nmodel: {}\n")
    with pytest.raises(ParamsError, match=r"params.yaml: line 3, column 6 is not valid YAML"):
        load_params(bad)


# ---------------------------------------------------------------------------------------------
# Bad input files: the stages' own readers, before any model loads


def run_main(module: str, tmp_path: Path, **paths) -> str:
    """Run a stage's main() the way `python -m` does; return its error line."""
    import importlib

    main = importlib.import_module(f"stages.{module}").main
    params = paths.pop("params", None) or write_params(tmp_path / "params.yaml")
    args = argparse.Namespace(params=str(params), **{k: str(v) for k, v in paths.items()})
    ap = argparse.ArgumentParser()
    with pytest.raises(SystemExit) as exit_:
        stage.run(lambda _: main(args), ap, [])
    assert exit_.value.code == 2
    return str(exit_.value.__context__)


# a prompt record (lidr.records.PROMPT)
PROMPT_LINE = (
    '{"id": "a", "kind": "general", "lang": "en", "text": "hi", "ok": true, "origin": "source", "error": null, '
    '"finish_reason": null}'
)


def generate_args(tmp_path: Path, prompts: Path) -> dict:
    return {
        "model": tmp_path / "no-model",
        "prompts": prompts,
        "out": tmp_path / "r.jsonl",
        "meta": tmp_path / "m.json",
        "cost": tmp_path / "c.json",
    }


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            f"{PROMPT_LINE}\n" + '{"id": "b", "kind": \n',
            "prompts.jsonl:2: not valid JSON",
        ),
        ('{"id": "a", "kind": "general", "text": "hi", "ok": true}\n', "prompts.jsonl:1: missing field 'lang'"),
        ("[1, 2]\n", "prompts.jsonl:1: expected a JSON object, got list"),
        ("", "prompts.jsonl: no prompts to answer"),
        (PROMPT_LINE.replace('"text": "hi", "ok": true', '"text": null, "ok": false') + "\n", "no prompts to answer"),
    ],
    ids=["broken-json", "missing-field", "not-an-object", "empty", "all-failed"],
)
def test_bad_prompt_files_stop_generation_naming_file_and_line(content, message, tmp_path):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(content, encoding="utf-8")
    assert message in run_main("generate", tmp_path, **generate_args(tmp_path, prompts))
    assert not (tmp_path / "r.jsonl").exists()


def test_a_tsv_with_the_wrong_number_of_columns_stops_eval_naming_file_and_line(tmp_path):
    mgsm = tmp_path / "mgsm"
    mgsm.mkdir()
    (mgsm / "mgsm_en.tsv").write_text("Two plus two?\t4\nThree plus three?\t6\textra\n", encoding="utf-8")
    (mgsm / "mgsm_es.tsv").write_text("¿Dos más dos?\t4\n", encoding="utf-8")
    params = write_params(tmp_path / "params.yaml", eval__mgsm__path=str(mgsm), eval__mgsm__enabled=True)
    error = run_main(
        "eval",
        tmp_path,
        params=params,
        model=tmp_path / "no-model",
        answers=tmp_path / "a.jsonl",
        metrics=tmp_path / "m.json",
        cost=tmp_path / "c.json",
        meta=tmp_path / "meta.json",
    )
    assert error == f"{mgsm / 'mgsm_en.tsv'}:2: expected 2 tab-separated columns (question, answer), got 3"
    with pytest.raises(DataError, match="mgsm_es.tsv: no rows"):
        (mgsm / "mgsm_es.tsv").write_text("\n")
        load_mgsm(str(mgsm), "es")


def test_a_responses_file_missing_a_field_stops_pairing(tmp_path):
    prompts = tmp_path / "prompts_en.jsonl"
    prompts.write_text('{"id": "a", "kind": "general", "text": "hi", "source": "s.jsonl"}\n')
    responses = tmp_path / "responses.jsonl"
    responses.write_text('{"id": "a", "kind": "general", "lang": "en", "messages": [], "response": "x"}\n')
    error = run_main(
        "pair",
        tmp_path,
        prompts=prompts,
        responses=responses,
        translations=tmp_path / "t.jsonl",
        out=tmp_path / "pairs.jsonl",
    )
    assert error.startswith(f"{responses}:1: missing field 'finish_reason'")


def test_an_empty_prompt_source_stops_sampling(tmp_path):
    empty = tmp_path / "general.jsonl"
    empty.write_text("\n")
    with pytest.raises(DataError, match="general.jsonl: the prompt source is empty"):
        load_source(PromptSource(str(empty), "general", 1))


# ---------------------------------------------------------------------------------------------
# Safe defaults: offline hub ids, remote code, pickle weights


def test_an_uncached_hub_model_while_offline_is_a_clear_error_not_a_hang(tmp_path):
    params = write_params(tmp_path / "params.yaml", model__base="lidr-tests/no-such-model")
    proc = subprocess.run(
        [sys.executable, "-m", "stages.prepare_model", "--params", str(params), "--out", str(tmp_path / "m0")],
        cwd=ROOT,
        env=stage_env(tmp_path / "journal", HF_HOME=str(tmp_path / "hf")),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1] == (
        "error: model.base: cannot load 'lidr-tests/no-such-model': HF_HUB_OFFLINE=1 is set and it is not in the "
        "local cache"
    )
    assert not (tmp_path / "m0").exists()


def test_an_uncached_hub_dataset_while_offline_is_a_clear_error():
    with pytest.raises(DataError, match="prompt source 'lidr-tests/no-such-dataset'"):
        load_source(PromptSource("lidr-tests/no-such-dataset", "general", 1))


REMOTE_CODE = """
import os, pathlib
pathlib.Path(os.environ["LIDR_TEST_MARKER"]).write_text("remote code ran")
from transformers import PretrainedConfig, PreTrainedModel
class EvilConfig(PretrainedConfig):
    model_type = "evil"
class EvilModel(PreTrainedModel):
    config_class = EvilConfig
"""


@pytest.fixture
def remote_code_model(tmp_path) -> Path:
    folder = tmp_path / "evil"
    folder.mkdir()
    (folder / "config.json").write_text(
        json.dumps(
            {
                "model_type": "evil",
                "architectures": ["EvilModel"],
                "auto_map": {
                    "AutoConfig": "modeling_evil.EvilConfig",
                    "AutoModelForCausalLM": "modeling_evil.EvilModel",
                },
            }
        )
    )
    (folder / "modeling_evil.py").write_text(REMOTE_CODE)
    (folder / "model.safetensors").write_bytes(b"")
    return folder


def test_a_model_that_needs_its_own_code_is_refused_by_default(remote_code_model, params, tmp_path, monkeypatch):
    marker = tmp_path / "marker"
    monkeypatch.setenv("LIDR_TEST_MARKER", str(marker))
    assert params.model.trust_remote_code is False
    with pytest.raises(ModelError, match="model.trust_remote_code is false"):
        load_causal_lm(remote_code_model, params.model)
    assert not marker.exists()


def test_remote_code_runs_only_when_params_ask_for_it(remote_code_model, tmp_path):
    """The control for the test above: with trust_remote_code true the same folder's code does run."""
    marker = tmp_path / "marker"
    script = (
        "import dataclasses, sys\n"
        "from lidr.config import load_params\nfrom lidr.model import load_causal_lm\n"
        "p = load_params(sys.argv[1])\n"
        "p = dataclasses.replace(p, model=dataclasses.replace(p.model, trust_remote_code=True))\n"
        "try:\n    load_causal_lm(sys.argv[2], p.model)\nexcept Exception:\n    pass\n"
    )
    env = stage_env(tmp_path / "journal", LIDR_TEST_MARKER=str(marker), HF_MODULES_CACHE=str(tmp_path / "modules"))
    subprocess.run(
        [sys.executable, "-c", script, str(ROOT / "params.yaml"), str(remote_code_model)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    assert marker.read_text() == "remote code ran"


def test_pickle_only_weights_are_refused(tiny_model, params, tmp_path):
    folder = tmp_path / "pickled"
    shutil.copytree(tiny_model, folder)
    from safetensors.torch import load_file

    torch.save(load_file(folder / "model.safetensors"), folder / "pytorch_model.bin")
    (folder / "model.safetensors").unlink()
    with pytest.raises(ModelError, match=r"no .safetensors weights; pickle weights \(pytorch_model.bin\) are refused"):
        load_causal_lm(folder, params.model)
    assert load_causal_lm(tiny_model, params.model).config.num_hidden_layers == 2
