"""Prompt sources are read as their authors meant: Alpagasus inputs kept, samples and ids tied to content."""

import json
import shutil

import pytest

from lidr.config import PromptSource
from lidr.data import load_source, sample_block, sample_prompts
from lidr.errors import DataError


def _write_jsonl(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_an_alpagasus_input_follows_its_instruction_and_an_empty_one_is_left_out(tmp_path):
    f = tmp_path / "alpagasus.json"
    rows = [
        {"id": 1, "instruction": "Translate into French.", "input": "Good morning.", "output": "Bonjour."},
        {"id": 2, "instruction": "Say hi.", "input": "", "output": "hi"},
        {"id": 3, "instruction": "Name a colour.", "output": "red"},
        {"id": 4, "instruction": "  Sum the numbers. ", "input": "  2, 3 and 4\n", "output": "9"},
        {"id": 5, "instruction": "Count.", "input": "   ", "output": "0"},
    ]
    f.write_text(json.dumps(rows))
    assert [r["text"] for r in load_source(PromptSource(str(f), "general", 1))] == [
        "Translate into French.\nGood morning.",
        "Say hi.",
        "Name a colour.",
        "Sum the numbers.\n2, 3 and 4",
        "Count.",
    ]


def test_an_alpagasus_input_that_is_not_text_is_refused(tmp_path):
    f = _write_jsonl(tmp_path / "a.jsonl", [{"instruction": "Add.", "input": ["1", "2"]}])
    with pytest.raises(DataError, match=r"a.jsonl: record 1: field 'input' is not a string"):
        load_source(PromptSource(str(f), "general", 1))


def test_a_question_source_ignores_an_input_field(tmp_path):
    f = _write_jsonl(tmp_path / "q.jsonl", [{"id": "q1", "question": "2+2?", "input": "ignored"}])
    assert load_source(PromptSource(str(f), "math", 1))[0]["text"] == "2+2?"


def test_the_same_file_at_two_paths_gives_the_same_sample(tmp_path):
    rows = [{"instruction": f"Prompt number {i}."} for i in range(20)]
    a = _write_jsonl(tmp_path / "one" / "prompts.jsonl", rows)
    b = tmp_path / "elsewhere" / "deeper" / "prompts.jsonl"
    b.parent.mkdir(parents=True)
    shutil.copyfile(a, b)
    src_a, src_b = PromptSource(str(a), "general", 5), PromptSource(str(b), "general", 5)
    recs_a, recs_b = load_source(src_a), load_source(src_b)
    assert [(r["id"], r["text"]) for r in recs_a] == [(r["id"], r["text"]) for r in recs_b]
    for round_ in (0, 1, 2):
        block_a = sample_block(recs_a, 5, round_, 7, str(a))
        block_b = sample_block(recs_b, 5, round_, 7, str(b))
        assert [(r["id"], r["text"]) for r in block_a] == [(r["id"], r["text"]) for r in block_b]
        assert block_a == sample_block(recs_a, 5, round_, 7, str(a))  # deterministic
    first = [r["text"] for r in sample_prompts((src_a,), 0, 7)]
    assert first == [r["text"] for r in sample_prompts((src_b,), 0, 7)]
    assert first != [f"Prompt number {i}." for i in range(5)]  # a permutation, not the file order
    assert [r["text"] for r in sample_prompts((src_a,), 0, 8)] != first  # another seed, another sample
    # renamed too: the generated ids carry the new file name, the sampled prompts are the same
    c = tmp_path / "renamed.jsonl"
    shutil.copyfile(a, c)
    renamed = sample_prompts((PromptSource(str(c), "general", 5),), 0, 7)
    assert [r["text"] for r in renamed] == first and renamed[0]["id"].startswith("renamed-")


def test_the_sample_follows_the_content_not_the_path(tmp_path):
    rows = [{"id": f"p{i}", "instruction": f"Prompt number {i}."} for i in range(20)]
    a = _write_jsonl(tmp_path / "a" / "train.jsonl", rows)
    b = _write_jsonl(tmp_path / "b" / "train.jsonl", [*rows[:-1], {"id": "p19", "instruction": "Changed."}])
    ids = [[r["id"] for r in sample_prompts((PromptSource(str(f), "general", 10),), 0, 3)] for f in (a, b)]
    assert ids[0] != ids[1]


def test_two_idless_files_of_one_name_get_disjoint_ids_and_sample_together(tmp_path):
    a = _write_jsonl(tmp_path / "en" / "train.jsonl", [{"instruction": f"English prompt {i}."} for i in range(6)])
    b = _write_jsonl(tmp_path / "de" / "train.jsonl", [{"instruction": f"Deutscher Prompt {i}."} for i in range(6)])
    src_a, src_b = PromptSource(str(a), "general", 3), PromptSource(str(b), "general", 3)
    ids_a = [r["id"] for r in load_source(src_a)]
    ids_b = [r["id"] for r in load_source(src_b)]
    assert not set(ids_a) & set(ids_b)
    assert all(i.startswith("train-") for i in ids_a + ids_b)
    assert ids_a[0].endswith("-0") and ids_a[5].endswith("-5") and len(set(ids_a)) == 6
    # stable: the same file gives the same ids again, and a copy elsewhere gives them too
    assert [r["id"] for r in load_source(src_a)] == ids_a
    c = tmp_path / "copy" / "train.jsonl"
    c.parent.mkdir()
    shutil.copyfile(a, c)
    assert [r["id"] for r in load_source(PromptSource(str(c), "general", 3))] == ids_a
    both = sample_prompts((src_a, src_b), 0, 0)
    assert len(both) == 6 and len({r["id"] for r in both}) == 6
    assert {r["source"] for r in both} == {str(a), str(b)}
