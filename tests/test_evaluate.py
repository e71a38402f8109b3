import pytest

from lidr.evaluate import detect_language, extract_last_number, is_correct, normalise_number


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("She makes 9 * 2 = $18 every day.", "18"),
        ("The answer is 1,200 books.", "1200"),
        ("Total: 114,200.", "114200"),
        ("It is 18.0", "18"),
        ("x = 3.5 and then 2.25", "2.25"),
        ("minus -4 degrees", "-4"),
        ("no digits here", None),
        ("Lists 3,4 and 5", "5"),
        ("Die Antwort lautet 1.234.567 Euro.", "1234567"),
        ("Ответ: \u22125", "-5"),
        ("Il faut 1 000 g, soit 2,5 kg", "2.5"),
    ],
)
def test_extract_last_number(text, number):
    assert extract_last_number(text) == number


def test_normalise_number():
    assert normalise_number("2,125") == "2125"
    assert normalise_number("18.0") == "18"
    assert normalise_number("abc") is None


def test_is_correct_compares_numerically():
    assert is_correct("so the answer is 1,500.", "1500")
    assert is_correct("Answer: 18.00", "18")
    assert not is_correct("Answer: 17", "18")
    assert not is_correct("I do not know", "18")


@pytest.mark.parametrize(
    ("text", "gold", "correct"),
    [
        # ordinary answers
        ("The answer is 18.", "18", True),
        ("It is 18.0", "18", True),  # the harness compares "180" with "18"; lidr reads 18 (module docstring)
        ("She pays $1,200 in total.", "1200", True),
        ("$1,200", "1200", True),
        ("3.5", "3.5", True),
        ("3.5", "35", False),  # the harness deletes the dot and accepts; lidr compares 3.5 with 35
        ("The answer is 17.", "18", False),
        # dot thousands separators (de, es, fr, ru, sw): a dot before exactly three digits
        ("Die Antwort lautet 1.234.", "1234", True),
        ("x = 1.2345", "1.2345", True),  # four digits after the dot: a decimal point
        ("La respuesta es 2.500 euros", "2500", True),
        ("1.234.567", "1234567", True),
        ("Die Antwort lautet 1.234,5 kg", "1234.5", True),
        ("0.125", "0.125", True),  # a zero integer part is never a thousands group
        ("18,00 €", "18", True),  # decimal comma; the harness reads 1800
        # space thousands separators (fr, ru), the harness takes the last group "000"
        ("1 000", "1000", True),
        ("La réponse est 12\u202f500.", "12500", True),
        ("1 000", "0", False),
        # signs: the Unicode minus and a dollar after the sign
        ("\u22125", "-5", True),
        ("The temperature is \u22125 degrees", "-5", True),
        ("-$5", "-5", True),
        ("He owes -$5.", "5", False),
        ("5", "-5", False),  # the harness deletes the minus on both sides and accepts
        ("from 3-5", "5", True),  # a hyphen after a digit is not a sign
        # no number
        ("I do not know", "18", False),
    ],
)
def test_is_correct_reads_numbers_as_written_in_each_language(text, gold, correct):
    assert is_correct(text, gold) is correct


def test_detect_language_is_restricted_to_the_given_languages():
    assert detect_language("Hola, ¿cómo estás? Tengo doce manzanas.", ("en", "es", "de"))[0] == "es"
    assert detect_language("Ich habe zwölf Äpfel und drei Birnen.", ("en", "es", "de"))[0] == "de"
    lang, prob = detect_language("The cat sat on the mat.", ("en", "fr"))
    assert lang == "en" and 0.5 < prob <= 1.0


def _gold_answers_score_100_percent(folder, n_files, separators_per_file):
    from lidr.backends import Completion
    from lidr.data import load_mgsm
    from stages.eval import score, summarise

    files = sorted(folder.glob("mgsm_*.tsv"))
    assert len(files) == n_files
    separators = 0
    for path in files:
        lang = path.stem.removeprefix("mgsm_")
        rows = load_mgsm(str(path.parent), lang)
        assert len(rows) == 250
        separators += sum("," in r["answer"] for r in rows)
        completions = [Completion(text=r["answer"], finish_reason="stop", n_tokens=1) for r in rows]
        records = score(rows, completions, ("en", lang))
        assert summarise(records)["mgsm"][lang]["accuracy"] == 1.0, lang
        # written inside a sentence, with a trailing ".0", the gold answer still scores
        assert all(is_correct(f"So the answer is {r['answer']}.0 in total.", r["answer"]) for r in rows), lang
    assert separators == separators_per_file * n_files


def test_gold_answers_in_the_mgsm_layout_score_100_percent(tmp_path):
    from tests.conftest import write_mgsm_layout

    folder = write_mgsm_layout(tmp_path / "mgsm", langs=("en", "es", "de", "fr", "ru"))
    _gold_answers_score_100_percent(folder, 5, 5)


def test_real_mgsm_gold_answers_score_100_percent_in_every_language():
    from tests.conftest import real_mgsm_dir

    _gold_answers_score_100_percent(real_mgsm_dir(), 11, 4)


def test_mgsm_off_target_rate_counts_answers_in_another_language():
    from lidr.backends import Completion
    from stages.eval import score, summarise

    rows = [{"id": f"q{i}", "lang": "es", "question": "¿Cuántas manzanas?", "answer": "12"} for i in range(4)]
    texts = [
        "Tiene doce manzanas en total, así que la respuesta es 12.",
        "He has twelve apples, so the answer is 12.",
        "Ella compra siete más y ahora tiene 13.",
        "La respuesta es 12 manzanas porque cinco más siete son doce.",
    ]
    records = score(rows, [Completion(t, "stop", 5) for t in texts], ("en", "es"))
    m = summarise(records)["mgsm"]["es"]
    # 3 of 4 correct: Wilson interval p = 0.75, n = 4
    assert m == {"accuracy": 0.75, "accuracy_ci95": [0.3006, 0.9544], "off_target_rate": 0.25, "n": 4}
