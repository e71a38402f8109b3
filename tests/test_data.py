import json
from dataclasses import replace

import pytest

from lidr.config import PromptSource
from lidr.data import load_mgsm, load_source, read_mgsm_tsv, sample_block, sample_prompts
from lidr.errors import DataError
from tests.conftest import ROOT, real_mgsm_dir, write_mgsm_layout

RECORDS = [{"id": f"p{i}", "kind": "general", "text": f"prompt {i}", "source": "s"} for i in range(10)]


def test_sample_blocks_are_seeded_and_disjoint():
    a0 = sample_block(RECORDS, 3, 0, seed=1, where="s")
    a1 = sample_block(RECORDS, 3, 1, seed=1, where="s")
    assert a0 == sample_block(RECORDS, 3, 0, seed=1, where="s")
    assert not {r["id"] for r in a0} & {r["id"] for r in a1}
    assert [r["id"] for r in a0] != [r["id"] for r in sample_block(RECORDS, 3, 0, seed=2, where="s")]


def test_sample_block_past_the_end_says_so():
    with pytest.raises(DataError, match="round 3 needs prompts 9..11"):
        sample_block(RECORDS, 3, 3, seed=1, where="s")


def test_alpagasus_and_gsm8k_layouts(tmp_path):
    alpaca = tmp_path / "alpagasus.json"
    alpaca.write_text(json.dumps([{"id": 7, "instruction": "Say hi.", "input": "", "output": "hi"}]))
    gsm = tmp_path / "gsm8k.jsonl"
    gsm.write_text(json.dumps({"question": "2+2?", "answer": "2+2=4\n#### 4"}) + "\n")
    assert load_source(PromptSource(str(alpaca), "general", 1)) == [
        {"id": "7", "kind": "general", "text": "Say hi.", "source": str(alpaca)}
    ]
    assert load_source(PromptSource(str(gsm), "math", 1)) == [
        {"id": "gsm8k-c26d9a4e-0", "kind": "math", "text": "2+2?", "source": str(gsm)}
    ]


def test_broken_jsonl_line_names_file_and_line(tmp_path):
    f = tmp_path / "p.jsonl"
    f.write_text('{"instruction": "a"}\n{"instruction": "b"\n')
    with pytest.raises(DataError, match=r"p.jsonl:2: not valid JSON"):
        load_source(PromptSource(str(f), "general", 1))


def test_missing_text_field_and_empty_source(tmp_path):
    f = tmp_path / "p.jsonl"
    f.write_text('{"instruction": "a"}\n{"instruction": ""}\n')
    with pytest.raises(DataError, match="record 2: field 'instruction' is missing or empty"):
        load_source(PromptSource(str(f), "general", 1))
    empty = tmp_path / "e.jsonl"
    empty.write_text("")
    with pytest.raises(DataError, match="empty"):
        load_source(PromptSource(str(empty), "general", 1))


def test_builtin_sources_sample_both_kinds():
    sources = (
        PromptSource(str(ROOT / "data/builtin/general_en.jsonl"), "general", 4),
        PromptSource(str(ROOT / "data/builtin/math_en.jsonl"), "math", 2),
    )
    first, second = sample_prompts(sources, 0, seed=0), sample_prompts(sources, 1, seed=0)
    assert [p["kind"] for p in first] == ["general"] * 4 + ["math"] * 2
    assert not {p["id"] for p in first} & {p["id"] for p in second}


def test_files_in_the_mgsm_layout_read_in_full(tmp_path):
    folder = write_mgsm_layout(tmp_path / "mgsm")
    for lang in ("en", "de", "zh", "bn"):
        rows = read_mgsm_tsv(folder / f"mgsm_{lang}.tsv")
        assert len(rows) == 250
        assert rows[3] == {"question": f'Q3 ({lang}): "3" ducks lay 16 eggs a day; how many?', "answer": "1,411"}
    en = load_mgsm(str(folder), "en", limit=3)
    assert en[0]["answer"] == "18" and en[0]["lang"] == "en" and len(en) == 3


def test_real_mgsm_files_read_in_full():
    folder = real_mgsm_dir()
    for lang in ("en", "de", "zh", "bn"):
        rows = read_mgsm_tsv(folder / f"mgsm_{lang}.tsv")
        assert len(rows) == 250
    en = load_mgsm(str(folder), "en", limit=3)
    assert en[0]["answer"] == "18" and en[0]["lang"] == "en" and len(en) == 3


def test_tsv_with_wrong_columns_names_file_and_line(tmp_path):
    (tmp_path / "mgsm_en.tsv").write_text("q1\t1\nq2 without answer\n")
    with pytest.raises(DataError, match=r"mgsm_en.tsv:2: expected 2 tab-separated columns"):
        load_mgsm(str(tmp_path), "en")


def test_xalpacaeval_items_are_parallel_and_every_one_has_a_reference(params):
    from lidr.data import load_alpaca, load_reference_outputs, load_references, reference_for

    a = params.eval.alpaca
    ids = None
    for lang in ("en", *a.languages):
        rows = load_alpaca(str(ROOT / a.path), lang)
        refs = load_reference_outputs(str(ROOT / a.reference), lang)
        by_id = load_references(str(ROOT / params.eval.likelihood.reference), lang)
        assert len(rows) == 403 and all(r["lang"] == lang for r in rows)
        assert all(r["instruction"] in refs for r in rows)  # the judge's join
        assert all(reference_for(by_id, r["id"], "not an instruction") for r in rows)  # the likelihood's, by id
        assert ids is None or [r["id"] for r in rows] == ids  # the same instructions in every language
        ids = [r["id"] for r in rows]


def test_the_sampled_items_are_the_same_ids_in_every_language_and_a_smaller_limit_takes_a_subset(params):
    from lidr.data import load_alpaca

    a = params.eval.alpaca
    picked = {lang: [r["id"] for r in load_alpaca(str(ROOT / a.path), lang, 200, params.seed)] for lang in a.languages}
    first = picked[a.languages[0]]
    assert len(first) == 200 and len(set(first)) == 200
    assert all(ids == first for ids in picked.values())
    every = [r["id"] for r in load_alpaca(str(ROOT / a.path), "en")]
    assert first == [i for i in every if i in set(first)]  # in file order
    assert first != every[:200]  # a seeded order, not the head of the file
    smaller = [r["id"] for r in load_alpaca(str(ROOT / a.path), "ru", 100, params.seed)]
    assert set(smaller) < set(first)
    assert [r["id"] for r in load_alpaca(str(ROOT / a.path), "es", 200, params.seed + 1)] != first
    assert [r["id"] for r in load_alpaca(str(ROOT / a.path), "de", 200, params.seed)] == first  # reproducible


def test_a_limit_above_the_file_names_the_file(tmp_path):
    from lidr.data import load_alpaca

    (tmp_path / "es.json").write_text('[{"id": 1, "instruction": "Hola"}]', encoding="utf-8")
    with pytest.raises(DataError, match=r"es\.json: 2 instructions asked for \(limit\), but the file has 1"):
        load_alpaca(str(tmp_path / "{lang}.json"), "es", 2)


def test_the_builtin_xalpaca_set_stays_parallel():
    from lidr.data import load_alpaca

    ids = None
    for lang in ("en", "es", "de", "fr", "ru"):
        rows = load_alpaca(str(ROOT / "data/builtin/xalpaca/{lang}.json"), lang)
        assert len(rows) == 48
        assert ids is None or [r["id"] for r in rows] == ids
        ids = [r["id"] for r in rows]


def test_builtin_parallel_prompts_cover_every_language_and_the_heldout_block_is_disjoint(params):
    from lidr.data import heldout_prompts, load_parallel, load_source

    for sources, parallel in (
        (params.chains["general"].sources, params.chains["general"].parallel),
        (params.heldout.sources, params.heldout.parallel),
    ):
        given = load_parallel(str(ROOT / parallel))
        for src in sources:
            for rec in load_source(replace(src, path=str(ROOT / src.path))):
                assert all((rec["id"], x) in given for x in params.languages.others), rec["id"]
    training = tuple(replace(s, path=str(ROOT / s.path)) for s in params.training_sources)
    heldout = tuple(replace(s, path=str(ROOT / s.path)) for s in params.heldout.sources)
    block = heldout_prompts(heldout, training, params.seed)
    assert len(block) == 200 and heldout_prompts(heldout, training, params.seed) == block


def test_a_heldout_prompt_that_is_also_a_training_prompt_is_refused(tmp_path):
    from lidr.config import PromptSource
    from lidr.data import heldout_prompts

    (tmp_path / "train.jsonl").write_text('{"id": "t1", "instruction": "Name three birds."}\n')
    (tmp_path / "held.jsonl").write_text('{"id": "h1", "instruction": "name  three birds."}\n')
    train = (PromptSource(str(tmp_path / "train.jsonl"), "general", 1),)
    held = (PromptSource(str(tmp_path / "held.jsonl"), "general", 1),)
    with pytest.raises(
        DataError, match=r"held.jsonl: held-out prompt 'h1' is also in the training source .*train.jsonl"
    ):
        heldout_prompts(held, train, 0)
    with pytest.raises(DataError, match=r"chains.heldout.sources: no held-out source"):
        heldout_prompts((), train, 0)


def test_xalpaca_loader_names_the_file_and_item(tmp_path):
    from lidr.data import load_alpaca

    (tmp_path / "es.json").write_text(json.dumps([{"id": 1, "instruction": "Hola"}, {"id": 1, "instruction": "Y"}]))
    with pytest.raises(DataError, match=r"es.json: item 1: duplicate id '1'"):
        load_alpaca(str(tmp_path / "{lang}.json"), "es")
    (tmp_path / "de.json").write_text(json.dumps([{"id": "a", "dataset": "x"}]))
    with pytest.raises(DataError, match=r"de.json: item 0: missing field 'instruction'"):
        load_alpaca(str(tmp_path / "{lang}.json"), "de")
