"""The data-quality gate: each rule on literal pairs that pass and fail it, the suite, the stage refusing a bad set."""

from __future__ import annotations

import dataclasses
import json

import pytest

from lidr.config import load_params
from lidr.errors import ParamsError
from lidr.gate import (
    apply_rules,
    rule_degenerate,
    rule_echo,
    rule_empty,
    rule_failed_translation,
    rule_identical,
    rule_length_ratio,
    rule_truncated,
    rule_wrong_language,
)
from tests.conftest import ROOT

LANGS = ("en", "es", "de", "fr", "ru")
ES_CHOSEN = "El agua es esencial para la vida, por eso debes beber al menos ocho vasos cada día."
ES_REJECTED = "Es bueno dormir bien y comer frutas y verduras todos los días de la semana."
EN_SOURCE = "Water is essential for life, so you should drink at least eight glasses every day."


def pair(chosen=ES_CHOSEN, rejected=ES_REJECTED, lang="es", **fields) -> dict:
    """An x pair whose chosen side is the English response translated to Spanish."""
    base = {
        "id": "p1",
        "lang": lang,
        "source_lang": "es",
        "pair_type": "x" if lang != "en" else "en",
        "kind": "general",
        "asks_translation": False,
        "prompt": [{"role": "user", "content": "Da un consejo para mantenerse sano."}],
        "chosen": [{"role": "assistant", "content": chosen}],
        "rejected": [{"role": "assistant", "content": rejected}],
        "chosen_origin": "en response translated to es",
        "rejected_origin": "es response",
        "chosen_finish_reason": "stop",
        "rejected_finish_reason": "stop",
        "translation_ok": chosen is not None,
        "chosen_source": EN_SOURCE,
        "rejected_source": None,
        "chosen_source_finish_reason": "stop",
        "rejected_source_finish_reason": None,
    }
    return {**base, **fields}


@pytest.fixture(scope="module")
def params():
    return load_params(ROOT / "params.yaml")


@pytest.fixture(scope="module")
def f(params):
    return params.filter


def rules_of(findings) -> list[tuple[str, str | None]]:
    return [(x.rule, x.side) for x in findings]


def test_a_good_pair_passes_every_rule(f):
    kept, rejected = apply_rules([pair()], f, LANGS)
    assert len(kept) == 1 and rejected == []


def test_failed_translation(f):
    assert rule_failed_translation(pair(), f) == []
    assert rules_of(rule_failed_translation(pair(chosen=None), f)) == [("failed_translation", "chosen")]


def test_empty(f):
    assert rule_empty(pair(rejected="ok"), f) == []
    assert rules_of(rule_empty(pair(rejected=" \n\t"), f)) == [("empty", "rejected")]


def test_identical_after_whitespace_normalisation(f):
    assert rule_identical(pair(), f) == []
    assert rules_of(rule_identical(pair(rejected="  " + ES_CHOSEN.replace(" ", "\n  ")), f)) == [("identical", None)]


def test_truncated_checks_the_side_and_the_response_it_translates(f):
    assert rule_truncated(pair(rejected_finish_reason="length"), f) == []  # default: chosen side only
    assert rules_of(rule_truncated(pair(chosen_finish_reason="length"), f)) == [("truncated", "chosen")]
    found = rule_truncated(pair(chosen_source_finish_reason="length"), f)
    assert rules_of(found) == [("truncated", "chosen")] and "translates a response" in found[0].detail
    no_source = dataclasses.replace(f, truncated=dataclasses.replace(f.truncated, include_source=False))
    assert rule_truncated(pair(chosen_source_finish_reason="length"), no_source) == []


def test_wrong_language(f):
    assert rule_wrong_language(pair(), f, LANGS) == []
    english = pair(chosen=EN_SOURCE)
    found = rule_wrong_language(english, f, LANGS)
    assert rules_of(found) == [("wrong_language", "chosen")] and "detected en" in found[0].detail
    # a prompt that asks for a translation expects another language
    assert rule_wrong_language({**english, "asks_translation": True}, f, LANGS) == []
    # too short to identify
    assert rule_wrong_language(pair(chosen="Yes, it is."), f, LANGS) == []
    # a confuser outside the configured languages is still detected: Portuguese is not Spanish
    pt = "Você deve beber muita água todos os dias, porque não é bom ficar sem água no verão."
    assert "detected pt" in rule_wrong_language(pair(chosen=pt), f, LANGS)[0].detail


def test_degenerate_lines_and_ngrams(f):
    assert rule_degenerate(pair(), f) == []
    looping_lines = "Paso 1: beber agua.\n" * 3
    assert "line" in rule_degenerate(pair(chosen=looping_lines), f)[0].detail
    looping_words = "y el agua es buena " * 6
    found = rule_degenerate(pair(rejected=looping_words), f)
    assert rules_of(found) == [("degenerate", "rejected")] and "4-gram" in found[0].detail
    assert rule_degenerate(pair(rejected="y el agua es buena " * 5), f) == []  # 5 < max_ngram_repeats 6
    # CJK text has no spaces: characters are the tokens
    assert rule_degenerate(pair(chosen="你好世界。" * 6), f) != []
    assert rule_degenerate(pair(chosen="水是生命之源，每天应该喝八杯水。"), f) == []


def test_length_ratio_uses_the_band_of_the_non_dominant_language(f):
    assert rule_length_ratio(pair(), f, "en") == []
    found = rule_length_ratio(pair(chosen="El agua es vida."), f, "en")
    assert rules_of(found) == [("length_ratio", "chosen")] and "es/en characters 0.20" in found[0].detail
    # an en pair: the rejected side is the x response translated to English, so the ratio is source/translation
    en = pair(lang="en", chosen=EN_SOURCE, rejected="Sleep.", chosen_source=None, rejected_source=ES_REJECTED)
    assert "es/en characters 12.50" in rule_length_ratio(en, f, "en")[0].detail
    assert rule_length_ratio({**en, "rejected": [{"role": "assistant", "content": EN_SOURCE}]}, f, "en") == []
    # Chinese is about a third as long as English
    zh = pair(lang="zh", source_lang="zh", chosen="水是生命之源，所以你每天至少应该喝八杯水。")
    assert rule_length_ratio(zh, f, "en") == []
    assert rule_length_ratio({**zh, "chosen": [{"role": "assistant", "content": EN_SOURCE}]}, f, "en") != []
    # short sources are not measured
    assert rule_length_ratio(pair(chosen="Agua.", chosen_source="Water."), f, "en") == []


def test_echo(f):
    assert rule_echo(pair(), f) == []
    assert rules_of(rule_echo(pair(chosen=EN_SOURCE + " "), f)) == [("echo", "chosen")]


def test_duplicates_and_readable_reasons(f):
    bad = pair(id="p2", chosen=EN_SOURCE, chosen_finish_reason="length")
    kept, rejected = apply_rules([pair(), pair(id="p3"), bad], f, LANGS)
    assert [p["id"] for p in kept] == ["p1"]
    assert [(p["id"], p["rejected_by"]) for p in rejected] == [
        ("p3", ["duplicate"]),
        ("p2", ["truncated", "wrong_language", "echo"]),
    ]
    assert "wrong_language[chosen]: detected en" in rejected[1]["reasons"][1]


def test_a_switched_off_rule_rejects_nothing(f):
    off = dataclasses.replace(f, wrong_language=dataclasses.replace(f.wrong_language, enabled=False))
    kept, _ = apply_rules([pair(chosen="This is a long English answer that should have been Spanish.")], off, LANGS)
    assert len(kept) == 1


# ---------------------------------------------------------------------------------------------
# Params


def _params_with(tmp_path, filter_section: str):
    text = (ROOT / "params.yaml").read_text(encoding="utf-8")
    start = text.index("\nfilter:\n")
    end = text.index("\ntrain:")
    (tmp_path / "params.yaml").write_text(text[:start] + "\nfilter:\n" + filter_section + text[end:], encoding="utf-8")
    return tmp_path / "params.yaml"


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("  truncated: {sides: [both]}\n", r"filter.truncated.sides\[0\]: expected 'chosen' or 'rejected'"),
        ("  wrong_language: {min_confidence: 1.5}\n", "filter.wrong_language.min_confidence: expected 0 to 1"),
        ("  wrong_language: {confusers: [xx]}\n", r"filter.wrong_language.confusers\[0\]: unknown language code 'xx'"),
        ("  degenerate: {max_line_repeats: 1}\n", "filter.degenerate.max_line_repeats: expected a value >= 2"),
        ("  length_ratio: {bands: {es: [2, 1]}}\n", r"filter.length_ratio.bands.es: expected \[low, high\]"),
        ("  length_ratio: {bands: {es: [0.5, 2]}}\n", "filter.length_ratio.bands: no band for language 'de'"),
        ("  suite: {min_kept_share: 2}\n", "filter.suite.min_kept_share: expected 0 to 1"),
        ("  suite: {min_pairs: 2}\n", "unknown key filter.suite.min_pairs"),
        ("  duplicates: {enabled: true}\n", "unknown key filter.duplicates"),
    ],
)
def test_filter_params_are_validated(tmp_path, section, message):
    with pytest.raises(ParamsError, match=message):
        load_params(_params_with(tmp_path, section))


def test_a_band_is_needed_only_while_the_rule_is_on(tmp_path):
    p = load_params(_params_with(tmp_path, "  length_ratio: {enabled: false, bands: {}}\n"))
    assert not p.filter.length_ratio.enabled


# ---------------------------------------------------------------------------------------------
# The suite and the stage (great-expectations runs in memory: a few seconds)


def run_stage(tmp_path, pairs: list[dict], filter_section: str | None = None):
    from lidr import stage
    from stages import filter as filter_stage

    (tmp_path / "pairs.jsonl").write_text("".join(json.dumps(p) + "\n" for p in pairs), encoding="utf-8")
    params = _params_with(tmp_path, filter_section) if filter_section else ROOT / "params.yaml"
    ap = stage.parser(filter_stage.__doc__)
    for flag in ("--pairs", "--kept", "--rejected", "--metrics", "--validation", "--report"):
        ap.add_argument(flag, required=True)
    out = {
        k: tmp_path / v
        for k, v in [
            ("kept", "kept.jsonl"),
            ("rejected", "rejected.jsonl"),
            ("metrics", "gate.json"),
            ("validation", "gate.validation.json"),
            ("report", "gate.md"),
        ]
    }
    argv = ["--params", str(params), "--pairs", str(tmp_path / "pairs.jsonl")]
    argv += [x for k, v in out.items() for x in (f"--{k}", str(v))]
    stage.run(filter_stage.main, ap, argv)
    return out


def good_set() -> list[dict]:
    pairs = []
    for i, lang in enumerate(("es", "de", "fr", "ru")):
        pairs.append(
            pair(
                id=f"g{i}",
                lang=lang,
                source_lang=lang,
                chosen_source=None,
                chosen_source_finish_reason=None,
                chosen=f"{ES_CHOSEN} ({lang})",
                rejected=f"{ES_REJECTED} ({lang})",
            )
        )
        pairs.append(
            pair(
                id=f"g{i}",
                lang="en",
                source_lang=lang,
                pair_type="en",
                chosen_source=None,
                chosen_source_finish_reason=None,
                chosen=f"{EN_SOURCE} ({lang})",
                rejected="Drink water.",
            )
        )
    return pairs


def test_the_stage_keeps_a_good_set_and_reports_counts_per_language_and_rule(tmp_path):
    off_language_checks = "  wrong_language: {enabled: false}\n"  # the literal texts above are all Spanish
    bad = pair(id="b1", lang="de", source_lang="de", chosen=None)
    out = run_stage(tmp_path, [*good_set(), bad], off_language_checks)
    kept = [json.loads(line) for line in out["kept"].read_text().splitlines()]
    assert len(kept) == 8 and set(kept[0]) == {
        "id",
        "lang",
        "source_lang",
        "pair_type",
        "prompt",
        "chosen",
        "rejected",
    }
    rejected = [json.loads(line) for line in out["rejected"].read_text().splitlines()]
    assert [(p["id"], p["rejected_by"]) for p in rejected] == [("b1", ["failed_translation"])]
    metrics = json.loads(out["metrics"].read_text())
    assert metrics["kept"] == {"en": 4, "es": 1, "de": 1, "fr": 1, "ru": 1}
    assert metrics["rules"]["failed_translation"] == 1 and metrics["rules"]["duplicate"] == 0
    assert metrics["rules_by_lang"]["de"]["failed_translation"] == 1
    assert metrics["rules_by_side"]["chosen"]["failed_translation"] == 1
    assert metrics["kept_share"]["de"] == 0.5 and metrics["suite"] == {"success": True, "failed": 0}
    validation = json.loads(out["validation"].read_text())
    assert validation["success"] and validation["kept"]["statistics"]["unsuccessful_expectations"] == 0
    assert "**PASSED**" in out["report"].read_text()


def test_the_stage_refuses_a_set_built_to_fail(tmp_path, capsys):
    pairs = good_set()
    # every German pair fails a rule: none kept for de, and a share of 0 for de
    pairs = [
        {**p, "chosen": [{"role": "assistant", "content": None}], "translation_ok": False} if p["lang"] == "de" else p
        for p in pairs
    ]
    section = "  wrong_language: {enabled: false}\n  suite: {min_pairs_per_lang: 1, min_kept_share: 0.3}\n"
    (tmp_path / "kept.jsonl").write_text("stale\n")
    with pytest.raises(SystemExit) as exit_info:
        run_stage(tmp_path, pairs, section)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "data-quality gate failed" in err
    assert (
        "expect_column_values_to_be_between(kept; {'min_value': 1.0}): language de: kept 0 (0 of 1 pairs kept)" in err
    )
    assert "expect_column_values_to_be_between(kept_share; {'min_value': 0.3}): language de: kept_share 0.0" in err
    assert not (tmp_path / "kept.jsonl").exists() and not (tmp_path / "gate.json").exists()
    report = (tmp_path / "gate.md").read_text()
    assert "**FAILED" in report and "language de: kept 0" in report
    assert json.loads((tmp_path / "gate.validation.json").read_text())["success"] is False


def test_the_suite_checks_the_kept_pairs_themselves(params):
    from lidr.quality import run_suite

    good = good_set()
    broken = [*good, {**good[0], "lang": "it"}, {**good[1], "chosen": [{"role": "assistant", "content": "x" * 30000}]}]
    result = run_suite(broken, [], LANGS, params.filter.suite)
    assert not result["success"]
    failures = "\n".join(result["failures"])
    assert "expect_column_values_to_be_in_set(lang;" in failures and "by language: it 1" in failures
    assert "expect_column_values_to_be_between(chosen_chars;" in failures and "values: [30000]" in failures


def test_the_stage_refuses_a_set_with_nothing_left(tmp_path, capsys):
    nothing = [pair(chosen=None)]
    with pytest.raises(SystemExit):
        run_stage(tmp_path, nothing, "  suite: {min_pairs_per_lang: 0}\n")
    err = capsys.readouterr().err
    assert (
        "0 of 1 pairs kept" in err
        and "expect_table_row_count_to_be_between(table; {'min_value': 1}): observed 0" in err
    )
