"""The real pipeline, small, with Spanish as the dominant language: `dvc repro` of the tiny configuration
(one iteration) with languages.dominant es and others [en]. The sampled prompts are English; the Spanish
ones come from the parallel sources, the English ones are the sources themselves. The pair in the dominant
language is of type `es`, and the gate keeps it."""

import json

import pytest
import yaml

from lidr import records
from tests.conftest import ROOT, copy_project, dvc, git
from tests.test_pipeline_e2e import ran

pytestmark = pytest.mark.slow

FILES = {
    "prompts_en.jsonl": records.PROMPT_EN,
    "prompts.jsonl": records.PROMPT,
    "responses.jsonl": records.RESPONSE,
    "translations.jsonl": records.TRANSLATION,
    "pairs.jsonl": records.PAIR,
    "pairs_kept.jsonl": records.KEPT_PAIR,
    "pairs_rejected.jsonl": records.REJECTED_PAIR,
}


def test_repro_with_spanish_dominant(tmp_path):
    project = copy_project(tmp_path)
    params = yaml.safe_load((ROOT / "tests" / "fixtures" / "tiny_params.yaml").read_text())
    params["languages"] = {"dominant": "es", "others": ["en"]}
    params["iterations"] = {"general-m1": params["iterations"]["general-m1"]}
    params["eval"]["models"] = ["m0", "general-m1"]
    params["eval"]["iterations"] = {"general-m1": "m0"}
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    git(project, "init", "-q")
    git(project, "add", "-A")
    git(project, "commit", "-qm", "tiny, es dominant")
    log = dvc(project, "repro")
    stages = {"filter@general-m1", "heldout_filter@heldout", "train@general-m1", "preference@general-m1", "summarize"}
    assert stages <= ran(log)

    for block in ("general-m1", "heldout"):
        data = project / "data" / block
        rows = {name: records.read_records(data / name, record) for name, record in FILES.items()}
        prompts = {(p["id"], p["lang"]): p for p in rows["prompts.jsonl"]}
        for p in rows["prompts_en.jsonl"]:  # English sources; Spanish prompts from the parallel file
            assert prompts[(p["id"], "en")]["origin"] == "source" and prompts[(p["id"], "en")]["text"] == p["text"]
            assert prompts[(p["id"], "es")]["origin"] == "parallel" and prompts[(p["id"], "es")]["text"] != p["text"]
        assert {p["pair_type"] for p in rows["pairs.jsonl"]} <= {"x", "es", "x_untranslated"}
        dominant = [p for p in rows["pairs_kept.jsonl"] if p["pair_type"] == "es"]
        assert dominant and all(p["lang"] == "es" and p["source_lang"] == "en" for p in dominant), block
        gate = json.loads((project / "metrics" / "gate" / f"{block}.json").read_text())
        assert gate["suite"]["success"] and gate["kept_by_type"]["es"]["en"] == len(dominant)

    pref = json.loads((project / "metrics/preference/general-m1.json").read_text())
    assert "es" in pref["heldout"] and "en" not in pref["heldout"]
    records.read_records(project / "data/general-m1/heldout_scores.jsonl", records.HELDOUT_SCORE)
    avg = json.loads((project / "metrics/headline/general-m1/avg.json").read_text())
    assert "heldout_es_acc" in avg and "heldout_en_acc" not in avg
    summary = json.loads((project / "metrics/summary.json").read_text())
    assert summary["iteration"] == 1 and "heldout_es_acc" not in summary
    assert (project / "plots/heldout_es_pair_accuracy.csv").exists()
    assert (project / "models/general-m1/model.safetensors").exists()
