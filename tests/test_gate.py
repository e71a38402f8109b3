"""The data-quality gate: each rule on literal pairs that pass and fail it, the suite, the stage refusing a bad set."""

from __future__ import annotations

import dataclasses
import json

import pytest

from lidr.config import load_params
from lidr.errors import ParamsError
from lidr.gate import (
    RULES,
    Context,
    Rule,
    apply_rules,
    degenerate,
    describe,
    rule_degenerate,
    rule_echo,
    rule_empty,
    rule_failed_translation,
    rule_identical,
    rule_length_ratio,
    rule_truncated,
    rule_wrong_language,
    words,
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


def check(rule: Rule, p: dict, f) -> list:
    """The findings of `rule` on pair `p`, under its own section of the filter settings `f` (languages: LANGS)."""
    return rule(p, getattr(f, rule.name), Context(LANGS))


def rules_of(findings) -> list[tuple[str, str | None]]:
    return [(x.rule, x.side) for x in findings]


def test_a_good_pair_passes_every_rule(f):
    kept, rejected = apply_rules([pair()], f, LANGS)
    assert len(kept) == 1 and rejected == []


def test_failed_translation(f):
    assert check(rule_failed_translation, pair(), f) == []
    assert rules_of(check(rule_failed_translation, pair(chosen=None), f)) == [("failed_translation", "chosen")]


def test_empty(f):
    assert check(rule_empty, pair(rejected="ok"), f) == []
    assert rules_of(check(rule_empty, pair(rejected=" \n\t"), f)) == [("empty", "rejected")]


def test_identical_after_whitespace_normalisation(f):
    assert check(rule_identical, pair(), f) == []
    assert rules_of(check(rule_identical, pair(rejected="  " + ES_CHOSEN.replace(" ", "\n  ")), f)) == [
        ("identical", None)
    ]


def test_truncated_checks_the_side_and_the_response_it_translates(f):
    assert check(rule_truncated, pair(rejected_finish_reason="length"), f) == []  # default: chosen side only
    assert rules_of(check(rule_truncated, pair(chosen_finish_reason="length"), f)) == [("truncated", "chosen")]
    found = check(rule_truncated, pair(chosen_source_finish_reason="length"), f)
    assert rules_of(found) == [("truncated", "chosen")] and "translates a response" in found[0].detail
    no_source = dataclasses.replace(f, truncated=dataclasses.replace(f.truncated, include_source=False))
    assert check(rule_truncated, pair(chosen_source_finish_reason="length"), no_source) == []


def test_wrong_language(f):
    assert check(rule_wrong_language, pair(), f) == []
    english = pair(chosen=EN_SOURCE)
    found = check(rule_wrong_language, english, f)
    assert rules_of(found) == [("wrong_language", "chosen")] and "detected en" in found[0].detail
    # a prompt that asks for a translation expects another language
    assert check(rule_wrong_language, {**english, "asks_translation": True}, f) == []
    # too short to identify
    assert check(rule_wrong_language, pair(chosen="Yes, it is."), f) == []
    # a confuser outside the configured languages is still detected: Portuguese is not Spanish
    pt = "Você deve beber muita água todos os dias, porque não é bom ficar sem água no verão."
    assert "detected pt" in check(rule_wrong_language, pair(chosen=pt), f)[0].detail


# ---------------------------------------------------------------------------------------------
# degenerate: repetition against the text's length and the source's own repetition

TOPIC_ANSWER = (
    "The Universal Declaration of Human Rights was adopted by the United Nations in Paris in 1948. "
    "Eleanor Roosevelt chaired the committee that drafted the Universal Declaration of Human Rights, and "
    "delegates from very different legal traditions argued over every article. The Universal Declaration "
    "of Human Rights is not a treaty, yet two covenants signed in 1966 made most of its principles binding, "
    "and many constitutions written since then quote the Universal Declaration of Human Rights directly. "
    "Schools teach the Universal Declaration of Human Rights as a statement of dignity and equality, and "
    "every year on 10 December, Human Rights Day marks the anniversary of the Universal Declaration of "
    "Human Rights."
)
LYRICS = """The station lights are fading and the last train's running late,
I've got a ticket in my pocket and a promise I can't break.

So carry me home, carry me home,
Over the hills where the wild winds roam,
Carry me home, carry me home.

My mother kept a candle burning in the kitchen glass,
She said the storms will always come and the storms will always pass.

So carry me home, carry me home,
Over the hills where the wild winds roam,
Carry me home, carry me home.

I've seen the city towers and I've danced in borrowed shoes,
But I hear the church bells ringing and I know I cannot lose.

So carry me home, carry me home,
Over the hills where the wild winds roam,
Carry me home, carry me home."""
EN_CODE = """Print the totals and the average between separator lines:

print("=" * 20)
print("Totals")
print("=" * 20)
print(total)
print("=" * 20)
print("Average")
print("=" * 20)
print(mean)"""
ES_CODE = """Imprime los totales y la media entre líneas separadoras:

print("=" * 20)
print("Totales")
print("=" * 20)
print(total)
print("=" * 20)
print("Media")
print("=" * 20)
print(mean)"""
NUMBERED_LOOP = """L'évidence est que on lui doit ça de cette façon :
1. Il n'avait pas une question à faire.
2. Il n'avait pas une question à faire.
3. Il n'avait pas une question à faire.
4. Il n'avait pas une question à faire.
5. Il n'avait pas une question à faire.
6. Il n'avait pas une question à faire."""
INTERLEAVED = """Wir können die Frau von der
<translation>
Einem
<translation>
Aufruf
<translation>
Erstellen
<translation>
Klutz
<translation>
Ziehung
<translation>
Nachricht
<translation>
Tasche
<translation>
Zimmer"""


@pytest.mark.parametrize(
    ("text", "found"),
    [
        pytest.param(ES_CHOSEN, None, id="a short answer"),
        pytest.param("No, no, no.", None, id="three words repeated: too few words to judge"),
        pytest.param(TOPIC_ANSWER, None, id="a long answer naming its topic six times"),
        pytest.param(LYRICS, None, id="lyrics with a chorus sung three times"),
        pytest.param(
            "Counting: 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20.", None, id="a count"
        ),
        pytest.param("水是生命之源，每天应该喝八杯水。", None, id="chinese"),
        pytest.param(
            "Count the wins, losses and draws in one line:\n\n"
            "wins, base, draws = sum(p > 0.5 for p in ps), sum(p < 0.5 for p in ps), sum(p == 0.5 for p in ps)\n\n"
            "Each sum counts the comparisons that are true, since True adds as 1.",
            None,
            id="code repeating a statement three times",
        ),
        pytest.param(
            "La creación de una gran empresa es enorme y parecilánea. La creación de una gran empresa es enorme y "
            "parecilánea. La creación de una gran empresa es enorme y parecilánea. La creación de una gran empresa "
            "es enorme y parecilánea. La creación de una gran empresa es enorme y parecilánea. La",
            "loop",
            id="a sentence five times",
        ),
        pytest.param("Drink water. Drink water. Drink water. Drink water.", "loop", id="a short text, one sentence"),
        pytest.param(
            "En esta manera, no puedes ser más eficazos en todas las maneras de la manera de la manera de la manera "
            "de la manera de la manera de la manera",
            "loop",
            id="a phrase loop",
        ),
        pytest.param(NUMBERED_LOOP, "loop", id="a numbered line back to back"),
        pytest.param(
            "你好世界。你好世界。你好世界。你好世界。你好世界。你好世界。", "loop", id="chinese back to back"
        ),
        pytest.param("Listo para la fiesta 💵💵💵💵💵💵💵💵💵💵💵💵💵💵💵💵", "loop", id="emoji back to back"),
        pytest.param(
            "Бюбба такие получиться и стояться стояться стояться стояться стояться стояться", "tail", id="a loop tail"
        ),
        pytest.param("Ejemplos: 1234567890; 1234567890; 1234567890; 1234567890;", "tail", id="digits at the end"),
        pytest.param(
            "Старые имя древнецеслищей-10289437561111111111111111111111111111111111111111", "tail", id="inside a word"
        ),
        pytest.param(INTERLEAVED, "line", id="one line between other lines"),
        pytest.param(
            'Он знал, как "100%", как "100%" (3); Всемникарс их, как "100%", как "100%" (4); Наделение их, как '
            '"100%", как "100%" (5); Бударстарда их, как "100%", как "100%" (6); Яблопа их, как "100%"',
            "ngram",
            id="an n-gram between changing words",
        ),
    ],
)
def test_degenerate_judges_repetition_against_the_length(f, text, found):
    result = degenerate(text, f.degenerate)
    assert (result.kind if result else None) == found
    findings = check(rule_degenerate, pair(rejected=text), f)
    assert rules_of(findings) == ([("degenerate", "rejected")] if found else [])


@pytest.mark.parametrize("text", ["   ", "...", "!? —", "\n\n"])
def test_a_side_with_no_word_is_not_degenerate_and_does_not_stop_the_gate(f, text):
    assert degenerate(text, f.degenerate) is None
    assert rules_of(check(rule_degenerate, pair(rejected=text), f)) == []


@pytest.mark.parametrize(
    ("source", "source_finish", "rejected"),
    [
        pytest.param(EN_CODE, "stop", False, id="the source repeats the line as often"),
        pytest.param(None, None, True, id="no source"),
        pytest.param(EN_CODE.replace('print("=" * 20)\n', "", 3), "stop", True, id="the source repeats it less"),
        pytest.param(EN_CODE, "loop", True, id="the source ended in a loop: no reference"),
    ],
)
def test_a_translation_may_repeat_what_its_source_repeats(f, source, source_finish, rejected):
    found = check(
        rule_degenerate, pair(chosen=ES_CODE, chosen_source=source, chosen_source_finish_reason=source_finish), f
    )
    assert rules_of(found) == ([("degenerate", "chosen")] if rejected else [])
    if rejected:
        assert found[0].detail == "line 'print(\"=\" * 20)' 4 times (44% of the lines)"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("l'océan", ["l'", "océan"]),
        ("L’eau d’ici", ["l'", "eau", "d'", "ici"]),
        ("Jusqu'à aujourd'hui", ["jusqu'", "à", "aujourd'", "hui"]),
        ("dell'anno", ["dell'", "anno"]),
        ("'quoted' words", ["quoted", "words"]),
        ("水是生命", ["水", "是", "生", "命"]),
        ("ok 💵💵", ["ok", "💵", "💵"]),
        ("Это тест 2024", ["это", "тест", "2024"]),
    ],
)
def test_words_split_elisions_and_characters(text, expected):
    assert words(text) == expected


def test_degenerate_findings_read_well(f):
    looping = (
        "La crieda es el cilindro de la célera. La crieda es el cilindro de la célera. La crieda es el cilindro "
        "de la célera. La crieda es el cilindro de la célera."
    )
    assert describe(degenerate(looping, f.degenerate)) == (
        "'la crieda es el cilindro de la célera' 4 times back to back (100% of the words)"
    )
    tail = "Такие задачи статьёzёzёzёzёzёzёzёzёzёzёzёzёzёzёzёzёz"
    assert describe(degenerate(tail, f.degenerate)) == "the text ends repeating 'ёz' 17 times"


def test_length_ratio_uses_the_band_of_the_non_dominant_language(f):
    assert check(rule_length_ratio, pair(), f) == []
    found = check(rule_length_ratio, pair(chosen="El agua es vida."), f)
    assert rules_of(found) == [("length_ratio", "chosen")] and "es/en characters 0.20" in found[0].detail
    # an en pair: the rejected side is the x response translated to English, so the ratio is source/translation
    en = pair(lang="en", chosen=EN_SOURCE, rejected="Sleep.", chosen_source=None, rejected_source=ES_REJECTED)
    assert "es/en characters 12.50" in check(rule_length_ratio, en, f)[0].detail
    assert check(rule_length_ratio, {**en, "rejected": [{"role": "assistant", "content": EN_SOURCE}]}, f) == []
    # Chinese is about a third as long as English
    zh = pair(lang="zh", source_lang="zh", chosen="水是生命之源，所以你每天至少应该喝八杯水。")
    assert check(rule_length_ratio, zh, f) == []
    assert check(rule_length_ratio, {**zh, "chosen": [{"role": "assistant", "content": EN_SOURCE}]}, f) != []
    # short sources are not measured
    assert check(rule_length_ratio, pair(chosen="Agua.", chosen_source="Water."), f) == []


def test_echo(f):
    assert check(rule_echo, pair(), f) == []
    assert rules_of(check(rule_echo, pair(chosen=EN_SOURCE + " "), f)) == [("echo", "chosen")]


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


def test_a_rule_is_one_registered_definition(params, monkeypatch):
    """Each rule's settings, check and documentation come from its one registered definition: config's `filter`
    sections are the registered settings classes, the gate runs the registered checks in order (each with its own
    section only), and the metrics, the report and the documentation list the registered rules."""
    from lidr import gate
    from lidr.config import FilterParams
    from lidr.quality import gate_metrics, report_markdown

    names = [r.name for r in RULES]
    assert names == list(gate.RULE_NAMES) and len(set(names)) == len(names)
    fields = dataclasses.fields(FilterParams)
    assert [x.name for x in fields] == [*names, "suite"]
    for r, x in zip(RULES, fields, strict=False):
        assert x.type is r.settings and isinstance(getattr(params.filter, r.name), r.settings)
        assert r.sides == getattr(r.settings(), "sides", None) and r.doc in gate.__doc__
    assert RULES[names.index("truncated")].sides == ("chosen",) and RULES[names.index("echo")].sides is None

    calls = []

    def spy(name):
        def check(p, settings, context):
            calls.append((name, settings))
            return [("chosen", "spied")] if name in ("empty", "duplicate") else []

        return check

    monkeypatch.setattr(gate, "RULES", [Rule(r.name, r.settings, spy(r.name), r.doc) for r in RULES])
    kept, rejected = apply_rules([pair()], params.filter, LANGS)
    assert [name for name, _ in calls] == names
    assert all(settings is getattr(params.filter, name) for name, settings in calls)
    assert kept == [] and rejected[0]["rejected_by"] == ["empty", "duplicate"]
    assert rejected[0]["reasons"] == ["empty[chosen]: spied", "duplicate[chosen]: spied"]

    metrics = gate_metrics([], rejected, LANGS)
    assert list(metrics["rules"]) == names and list(metrics["rules_by_side"]["chosen"]) == names
    report = report_markdown(
        "t",
        metrics,
        {"success": True, "failures": [], "kept": {"results": []}, "per_language": {"results": []}},
        rejected,
    )
    per_rule = report.split("## Rejections per rule")[1].split("\n## ")[0]
    assert [row.split(" | ")[0].removeprefix("| ") for row in per_rule.splitlines()[4:] if row] == names


def test_the_counts_per_side_read_each_finding_not_its_line():
    """The side a finding is counted for is the finding's, whatever brackets its detail has."""
    from lidr.gate import Finding, Reason
    from lidr.quality import gate_metrics

    reason = Reason(Finding("length_ratio", "rejected", "es/en characters 3.00 outside [0.6, 2.4]"))
    assert reason == "length_ratio[rejected]: es/en characters 3.00 outside [0.6, 2.4]"
    assert json.loads(json.dumps([reason])) == [str(reason)]  # written as the line it reads as
    rejected = [{**pair(), "rejected_by": ["length_ratio"], "reasons": [reason]}]
    by_side = gate_metrics([], rejected, LANGS)["rules_by_side"]
    assert by_side["rejected"]["length_ratio"] == 1 and by_side["chosen"]["length_ratio"] == 0


def test_a_finding_on_the_whole_pair_is_counted_under_pair():
    from lidr.gate import Finding, Reason
    from lidr.quality import gate_metrics

    reason = Reason(Finding("duplicate", None, "same language, prompt and chosen text as an earlier pair"))
    rejected = [{**pair(), "rejected_by": ["duplicate"], "reasons": [reason]}]
    by_side = gate_metrics([], rejected, LANGS)["rules_by_side"]
    assert by_side["pair"]["duplicate"] == 1 and by_side["chosen"]["duplicate"] == 0


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
        ("  degenerate: {min_copies: 1}\n", "filter.degenerate.min_copies: expected a value >= 2"),
        ("  degenerate: {ngram_copies: 1}\n", "filter.degenerate.ngram_copies: expected a value >= 2"),
        ("  degenerate: {tail_copies: 0}\n", "filter.degenerate.tail_copies: expected a value >= 2"),
        ("  degenerate: {loop_copies: 1}\n", "filter.degenerate.loop_copies: expected a value >= 2"),
        ("  degenerate: {ngram: 0}\n", "filter.degenerate.ngram: expected a value >= 1"),
        ("  degenerate: {loop_words: 0}\n", "filter.degenerate.loop_words: expected a value >= 1"),
        ("  degenerate: {max_share: 1.5}\n", "filter.degenerate.max_share: expected a share above 0 and at most 1"),
        ("  degenerate: {source_ratio: 0}\n", "filter.degenerate.source_ratio: expected a share above 0"),
        ("  degenerate: {max_share: high}\n", "filter.degenerate.max_share: expected float, got 'high'"),
        ("  degenerate: {max_line_repeats: 3}\n", "unknown key filter.degenerate.max_line_repeats"),
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
    ap.add_argument("--chain", default="general")
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
