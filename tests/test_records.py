"""The record contracts of lidr/records.py: checked on write (nothing written) and on read (file, line, field)."""

from __future__ import annotations

import json

import pytest

from lidr import records
from lidr.errors import DataError
from lidr.pairs import build_pairs
from lidr.records import (
    KEPT_PAIR,
    PAIR,
    PROMPT,
    PROMPT_EN,
    RESPONSE,
    pair_types,
    read_records,
    write_records,
)


def prompt(i=0, **fields) -> dict:
    base = {
        "id": f"p{i}",
        "kind": "general",
        "lang": "es",
        "text": "Hola.",
        "origin": "parallel",
        "ok": True,
        "error": None,
        "finish_reason": None,
    }
    return {**base, **fields}


def response(id_, lang, text, finish="stop") -> dict:
    messages = [{"role": "user", "content": f"{id_} in {lang}"}]
    return {
        "id": id_,
        "kind": "general",
        "lang": lang,
        "messages": messages,
        "response": text,
        "finish_reason": finish,
        "n_tokens": 3,
    }


def translation(id_, src, tgt, text) -> dict:
    return {
        "id": id_,
        "source_lang": src,
        "target_lang": tgt,
        "source_text": "source",
        "text": text,
        "ok": text is not None,
        "error": None if text is not None else "no <translated> span",
        "raw": text or "",
        "finish_reason": "stop",
        "n_tokens": 4,
    }


def test_every_record_between_stages_is_defined_with_typed_fields():
    defined = {name for name, v in vars(records).items() if isinstance(v, records.Record)}
    assert {
        "PROMPT_EN",
        "PROMPT",
        "RESPONSE",
        "TRANSLATION",
        "PAIR",
        "KEPT_PAIR",
        "REJECTED_PAIR",
        "EVAL_ANSWER",
        "ALPACA_ANSWER",
        "JUDGEMENT",
        "SCORE",
        "HELDOUT_SCORE",
    } <= defined
    assert KEPT_PAIR.names == ("id", "lang", "source_lang", "pair_type", "prompt", "chosen", "rejected")
    assert records.allowed(PROMPT.fields["origin"]) == ("source", "parallel", "self-translation")
    assert records.allowed(PROMPT.fields["finish_reason"]) == ("stop", "length", "loop")
    assert records.allowed(PROMPT_EN.fields["kind"]) == ("general", "math")


def test_a_good_file_round_trips(tmp_path):
    path = tmp_path / "prompts.jsonl"
    rows = [prompt(0), prompt(1, text=None, ok=False, origin="self-translation", finish_reason="length")]
    assert write_records(path, PROMPT, rows) == 2
    assert read_records(path, PROMPT) == rows


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"lang": None}, "field 'lang' is NoneType None, expected a language code (prompt record)"),
        ({"kind": "poem"}, "field 'kind' is str 'poem', expected one of 'general', 'math'"),
        ({"ok": 1}, "field 'ok' is int 1, expected bool"),
        (
            {"finish_reason": "eos"},
            "field 'finish_reason' is str 'eos', expected one of 'stop', 'length', 'loop' or null",
        ),
        (
            {"extra": 1},
            "unknown field 'extra' (prompt record: id, kind, lang, text, origin, ok, error, finish_reason)",
        ),
    ],
    ids=["null", "enum", "type", "enum-or-null", "unknown"],
)
def test_a_bad_record_on_write_names_file_line_and_field_and_writes_nothing(tmp_path, bad, message):
    path = tmp_path / "prompts.jsonl"
    with pytest.raises(DataError) as e:
        write_records(path, PROMPT, [prompt(0), prompt(1, **bad)])
    assert str(e.value).startswith(f"{path}:2 (not written): ") and message in str(e.value)
    assert list(tmp_path.iterdir()) == []  # nothing half-written
    write_records(path, PROMPT, [prompt(0)])
    with pytest.raises(DataError):
        write_records(path, PROMPT, [prompt(1, **bad)])
    assert read_records(path, PROMPT) == [prompt(0)]  # the old file is kept


def test_a_missing_field_on_write(tmp_path):
    row = prompt(0)
    del row["origin"]
    with pytest.raises(DataError, match=r"prompts.jsonl:1 \(not written\): missing field 'origin' \(prompt record: "):
        write_records(tmp_path / "prompts.jsonl", PROMPT, [row])


def test_a_bad_record_on_read_names_file_line_and_field(tmp_path):
    path = tmp_path / "responses.jsonl"
    good = response("a", "en", "Hi.")
    path.write_text(
        json.dumps(good) + "\n\n" + json.dumps({**good, "n_tokens": "3"}) + "\n", encoding="utf-8"
    )  # a blank line still counts
    with pytest.raises(DataError) as e:
        read_records(path, RESPONSE)
    assert str(e.value) == f"{path}:3: field 'n_tokens' is str '3', expected int (response record)"
    path.write_text(json.dumps({k: v for k, v in good.items() if k != "response"}) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"responses.jsonl:1: missing field 'response' \(response record: id, "):
        read_records(path, RESPONSE)
    path.write_text(json.dumps(good) + "\n{broken\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"responses.jsonl:2: not valid JSON"):
        read_records(path, RESPONSE)


def test_a_json_list_input_names_the_item(tmp_path):
    path = tmp_path / "es.json"
    path.write_text(json.dumps([{"id": 1, "instruction": "Hola", "dataset": "d"}, {"id": 2, "instruction": 3}]))
    with pytest.raises(DataError, match=r"es.json: item 1: field 'instruction' is int 3, expected str"):
        read_records(path, records.ALPACA_INSTRUCTION)


def test_float_fields_take_integers_but_not_booleans():
    score = {
        "id": "a",
        "source_lang": "es",
        "pair_type": "x",
        "lang": "es",
        "chosen_logp": -3,
        "rejected_logp": -4.5,
        "chosen_tokens": 2,
        "rejected_tokens": 3,
    }
    assert records.SCORE.check(score, "s") is score
    with pytest.raises(DataError, match="field 'chosen_logp' is bool True, expected float"):
        records.SCORE.check({**score, "chosen_logp": True}, "s")


@pytest.mark.parametrize("dominant", ["en", "es"])
def test_pairs_of_any_dominant_language_are_pair_records(dominant):
    x = "de" if dominant == "es" else "es"
    responses = [response("a", dominant, "One."), response("a", x, "Zwei.")]
    translations = [translation("a", dominant, x, "Eins."), translation("a", x, dominant, "Two.")]
    pairs = build_pairs([{"id": "a", "text": "Name a number."}], responses, translations, dominant, (x,))
    for i, p in enumerate(pairs):
        PAIR.check(p, f"pair {i}")
    assert [p["pair_type"] for p in pairs] == ["x", dominant]
    assert {p["pair_type"] for p in pairs} <= set(pair_types(dominant))
    assert pair_types("en") == ("x", "en", "x_untranslated")  # the gate's set for the default run, in its order


def test_the_gate_allows_the_dominant_languages_pair_type(params):
    """The drift: the gate allowed only `en` as the dominant pair's type; it follows languages.dominant now."""
    from lidr.quality import run_suite

    def kept(id_, lang, pair_type):
        return {
            "id": id_,
            "lang": lang,
            "source_lang": "en",
            "pair_type": pair_type,
            "prompt": [{"role": "user", "content": "Di hola."}],
            "chosen": [{"role": "assistant", "content": f"Hola, amigo {id_}."}],
            "rejected": [{"role": "assistant", "content": f"Hello, friend {id_}."}],
        }

    langs = ("es", "en")  # dominant es
    good = [kept("a", "es", "es"), kept("a", "en", "x")]
    assert run_suite(good, [], langs, params.filter.suite)["success"]
    stale = [kept("a", "es", "en"), kept("a", "en", "x")]  # `en` is not a pair type when es is dominant
    result = run_suite(stale, [], langs, params.filter.suite)
    assert not result["success"]
    assert "expect_column_values_to_be_in_set(pair_type;" in "\n".join(result["failures"])
