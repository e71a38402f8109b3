"""The method's prompts (docs/method.md, steps 3 and 4; exact text of the authors' code) and their parsing.

Chat templates are never written here: messages go through the tokenizer's own template.
"""

from __future__ import annotations

import re

from lidr.languages import language_name

TRANSLATION_TEMPLATE = (
    "Please translate the following sentences into {lang}. The input sentences are wrapped by <sentence> and "
    "</sentence>:\n\n<sentence>\n{text}\n</sentence>\n\nThe translated result should be wrapped by <translated> "
    "and </translated>.\n"
)
TRANSLATION_PRIMER = "<translated>\n"  # the assistant turn starts with this
TRANSLATION_STOP = "</translated>"

MATH_TEMPLATE = (
    "Below is an instruction that describes a task. Write a response that appropriately completes the request "
    "in {language}. Please answer in {language}.\n\n### Instruction:\n{question}\n\n### Response:\n"
)

_TRANSLATED = re.compile(r"<translated>(.*?)</translated>", re.DOTALL)
_ASKS_TRANSLATION = re.compile(r"\btranslat(e|es|ed|ing|ion|ions)\b", re.IGNORECASE)


def translation_messages(text: str, target_lang: str) -> list[dict]:
    content = TRANSLATION_TEMPLATE.format(lang=language_name(target_lang), text=text)
    return [{"role": "user", "content": content}]


def parse_translation(completion: str, *, primed: bool = True) -> str | None:
    """The translated text, or None when the model gave no <translated> span.

    `completion` is what the model generated after the primer; with `primed` the primer is put
    back in front, so that the first `<translated>(.*?)</translated>` match is the reference's.
    """
    text = (TRANSLATION_PRIMER + completion) if primed else completion
    match = _TRANSLATED.search(text)
    if match is None:
        return None
    return match.group(1).strip()


def task_messages(text: str, kind: str, lang: str) -> list[dict]:
    """The user turn for a prompt: math questions go in the reference's math wrapper."""
    if kind == "math":
        content = MATH_TEMPLATE.format(language=language_name(lang), question=text)
    else:
        content = text
    return [{"role": "user", "content": content}]


def asks_for_translation(prompt: str) -> bool:
    """Whether an (English) prompt itself asks for a translation, e.g. "Translate 'hello' into French"."""
    return _ASKS_TRANSLATION.search(prompt) is not None
