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
