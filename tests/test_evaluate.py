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


def test_detect_language_is_restricted_to_the_given_languages():
    assert detect_language("Hola, ¿cómo estás? Tengo doce manzanas.", ("en", "es", "de"))[0] == "es"
    assert detect_language("Ich habe zwölf Äpfel und drei Birnen.", ("en", "es", "de"))[0] == "de"
    lang, prob = detect_language("The cat sat on the mat.", ("en", "fr"))
    assert lang == "en" and 0.5 < prob <= 1.0


def test_real_mgsm_gold_answers_score_100_percent_in_every_language():
    from lidr.backends import Completion
    from lidr.data import load_mgsm
    from stages.eval import score, summarise
    from tests.conftest import SHARED

    files = sorted((SHARED / "data" / "mgsm").glob("mgsm_*.tsv"))
    assert len(files) == 11
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
    assert separators == 4 * 11


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
