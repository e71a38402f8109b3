from lidr.prompts import (
    TRANSLATION_TEMPLATE,
    asks_for_translation,
    parse_translation,
    task_messages,
    translation_messages,
)


def test_translation_template_is_the_reference_text():
    msg = translation_messages("Hello.", "de")
    assert msg == [{"role": "user", "content": TRANSLATION_TEMPLATE.format(lang="German", text="Hello.")}]
    assert msg[0]["content"] == (
        "Please translate the following sentences into German. The input sentences are wrapped by <sentence> and "
        "</sentence>:\n\n<sentence>\nHello.\n</sentence>\n\nThe translated result should be wrapped by <translated> "
        "and </translated>.\n"
    )


def test_parse_translation_puts_the_primer_back_and_takes_the_first_span():
    assert parse_translation("Hola mundo.\n</translated>") == "Hola mundo."
    assert parse_translation("uno</translated> x <translated>dos</translated>") == "uno"


def test_parse_translation_failure_is_none_not_text():
    assert parse_translation("Hola mundo, and it never closes") is None
    assert parse_translation("Hola", primed=False) is None
    assert parse_translation("\n  </translated>") == ""


def test_math_prompts_use_the_reference_wrapper_in_the_asked_language():
    (msg,) = task_messages("What is 2+2?", "math", "es")
    assert msg["content"].startswith("Below is an instruction that describes a task.")
    assert "in Spanish. Please answer in Spanish." in msg["content"]
    assert msg["content"].endswith("### Instruction:\nWhat is 2+2?\n\n### Response:\n")
    assert task_messages("Say hi.", "general", "es") == [{"role": "user", "content": "Say hi."}]


def test_asks_for_translation():
    assert asks_for_translation("Translate 'good morning' into Spanish.")
    assert asks_for_translation("Give the translation of this phrase.")
    assert not asks_for_translation("Describe a transistor.")
