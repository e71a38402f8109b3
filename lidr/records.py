"""The records that pass between stages: one definition per file, checked when written and when read.

A definition lists its fields in file order, each with its type as a Python annotation: `str | None` may be
null, `Literal[...]` (and `Lang`, a language code of lidr.languages) allows only the values it lists,
`list[dict]` is a list of JSON objects (`Messages`: chat messages, [{"role", "content"}]). A float field
also takes an integer. A record has exactly its fields; an input file that people write (`open=True`) may
have others too. `write_records` checks every record before it writes anything (the file is then written
atomically, lidr.io); `read_records` checks every record it reads. Both raise DataError naming the file,
the line (the item, in a JSON list) and the field.

| file                                  | written by                 | record        |
|---------------------------------------|----------------------------|---------------|
| data/<it>/prompts_en.jsonl            | sample                     | PROMPT_EN     |
| data/<it>/prompts.jsonl               | translate_prompts          | PROMPT        |
| data/<it>/responses.jsonl             | generate                   | RESPONSE      |
| data/<it>/translations.jsonl          | translate_responses        | TRANSLATION   |
| data/<it>/pairs.jsonl                 | pair                       | PAIR          |
| data/<it>/pairs_kept.jsonl            | filter (train reads it)    | KEPT_PAIR     |
| data/<it>/pairs_rejected.jsonl        | filter                     | REJECTED_PAIR |
| data/<it>/eval_answers.jsonl          | eval (MGSM)                | EVAL_ANSWER   |
| data/<it>/alpaca_answers.jsonl        | eval (instructions)        | ALPACA_ANSWER |
| data/<it>/judgements.jsonl            | judge                      | JUDGEMENT     |
| data/heldout/scores_m0.jsonl          | heldout_score_m0           | SCORE         |
| data/<it>/heldout_scores.jsonl        | preference                 | HELDOUT_SCORE |
| data/<it>/reference_likelihood.jsonl  | likelihood                 | LIKELIHOOD    |

The held-out block's files (data/heldout/) and m0's (data/m0/) are the same records. Inputs that people
write: PARALLEL_PROMPT (chains.<chain>.parallel, the held-out block's included), ALPACA_INSTRUCTION
(eval.alpaca.path) and REFERENCE_OUTPUT (eval.alpaca.reference).
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from lidr.errors import DataError
from lidr.io import iter_json_or_jsonl, write_jsonl
from lidr.languages import LANGUAGE_NAMES

Lang = Literal[tuple(LANGUAGE_NAMES)]  # a language code: "en", "es", ...
Kind = Literal["general", "math"]
FinishReason = Literal["stop", "length", "loop"]  # loop: ended early as degenerate (lidr.backends)
Messages = list[dict]  # chat messages [{"role": "user"|"assistant", "content": str|None}]

# The language of the sampled prompts (prompts_en.jsonl): the built-in sources are English. With another
# dominant language, translate_prompts takes its prompts from the parallel source or self-translates them.
SOURCE_LANG = "en"

# A pair's type (lidr/pairs.py): `x` (the dominant response translated into x, over the x response),
# `x_untranslated` (the dominant response untranslated: the prompt asks for a translation) and, for the pair
# in the dominant language, that language's code: `en` by default.
X_PAIR, X_UNTRANSLATED = "x", "x_untranslated"
PairType = Literal[X_PAIR, X_UNTRANSLATED] | Lang


def pair_types(dominant: str) -> tuple[str, ...]:
    """The pair types of a run whose dominant language is `dominant` (what the gate allows)."""
    return (X_PAIR, dominant, X_UNTRANSLATED)


@dataclass(frozen=True)
class Record:
    name: str
    fields: dict[str, Any]  # field -> type, in file order
    open: bool = False  # other fields allowed (a file that people write)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.fields)

    def extend(self, name: str, **fields: Any) -> Record:
        return Record(name, {**self.fields, **fields}, self.open)

    def only(self, name: str, *names: str) -> Record:
        return Record(name, {k: self.fields[k] for k in names}, self.open)

    def check(self, record: Any, where: str) -> dict:
        """`record` itself when it is one of these; else DataError naming `where` and the field."""
        if not isinstance(record, dict):
            raise DataError(f"{where}: expected a JSON object, got {type(record).__name__}")
        for field, tp in self.fields.items():
            if field not in record:
                raise DataError(f"{where}: missing field {field!r} ({self.name} record: {', '.join(self.names)})")
            if not _is(record[field], tp):
                raise DataError(
                    f"{where}: field {field!r} is {_show(record[field])}, expected {describe(tp)} ({self.name} record)"
                )
        if not self.open:
            extra = [k for k in record if k not in self.fields]
            if extra:
                raise DataError(f"{where}: unknown field {extra[0]!r} ({self.name} record: {', '.join(self.names)})")
        return record


def _is(value: Any, tp: Any) -> bool:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return True
    if tp is None or tp is type(None):
        return value is None
    if origin in (typing.Union, types.UnionType):
        return any(_is(value, a) for a in args)
    if origin is Literal:
        return isinstance(value, str | int) and not isinstance(value, bool) and value in args
    if origin is list:
        return isinstance(value, list) and all(_is(v, args[0]) for v in value) if args else isinstance(value, list)
    if origin is dict:
        return isinstance(value, dict)
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, tp)


def describe(tp: Any) -> str:
    """A type as the error messages name it: `str | None`, `one of 'general', 'math'`, `a language code`."""
    if tp is Lang:
        return "a language code"
    if tp is None or tp is type(None):
        return "null"
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(describe(a) for a in args)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin is not None:
        return f"{origin.__name__}[{', '.join(describe(a) for a in args)}]"
    return getattr(tp, "__name__", str(tp))


def _show(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:60]}{'...' if len(text) > 60 else ''}"


def allowed(tp: Any) -> tuple:
    """The values a Literal type (or a union of Literals and None) allows, None left out."""
    if typing.get_origin(tp) is Literal:
        return typing.get_args(tp)
    return tuple(v for a in typing.get_args(tp) if a is not type(None) for v in allowed(a))


def read_records(path: str | Path, record: Record) -> list[dict]:
    """Every record of a JSONL file (or a .json list), each checked against `record`."""
    return [record.check(r, where) for where, r in iter_json_or_jsonl(path)]


def write_records(path: str | Path, record: Record, rows: Iterable[Mapping[str, Any]]) -> int:
    """Check every row against `record`, then write them all (atomically); a bad row writes nothing."""
    rows = list(rows)
    for line, row in enumerate(rows, 1):
        record.check(row, f"{path}:{line} (not written)")
    return write_jsonl(path, rows)


# ---------------------------------------------------------------------------------------------
# The records between stages

PROMPT_EN = Record(  # sample: the iteration's (or the held-out block's) prompts, in SOURCE_LANG
    "English prompt",
    {"id": str, "kind": Kind, "text": str, "source": str},
)

PROMPT = Record(  # translate_prompts: every prompt in every language (text null when its translation failed)
    "prompt",
    {
        "id": str,
        "kind": Kind,
        "lang": Lang,
        "text": str | None,
        "origin": Literal["source", "parallel", "self-translation"],
        "ok": bool,  # false: not answered (failed translation, or no prompt in the dominant language)
        "error": str | None,
        "finish_reason": FinishReason | None,  # of the self-translation
    },
)

RESPONSE = Record(  # generate: one answer per prompt that is ok
    "response",
    {
        "id": str,
        "kind": Kind,
        "lang": Lang,
        "messages": Messages,  # the user turn the model answered
        "response": str,
        "finish_reason": FinishReason,
        "n_tokens": int,
    },
)

TRANSLATION = Record(  # translate_responses: dominant -> every x, every x -> dominant
    "translation",
    {
        "id": str,
        "source_lang": Lang,
        "target_lang": Lang,
        "source_text": str,
        "text": str | None,  # null: no <translated> span, or an empty one
        "ok": bool,
        "error": str | None,
        "raw": str,  # what the model generated
        "finish_reason": FinishReason,
        "n_tokens": int,
    },
)

PAIR = Record(  # pair: TRL conversational format plus provenance (the table of lidr/pairs.py)
    "pair",
    {
        "id": str,
        "lang": Lang,  # the language of the prompt and both sides
        "source_lang": Lang,  # the non-dominant language x the pair was built for
        "pair_type": PairType,
        "kind": Kind,
        "prompt": Messages,
        "chosen": Messages,  # one assistant message; content null when its translation failed
        "rejected": Messages,
        "chosen_origin": str,  # e.g. "en response translated to es"
        "rejected_origin": str,
        "chosen_finish_reason": FinishReason,
        "rejected_finish_reason": FinishReason,
        "translation_ok": bool,
        "asks_translation": bool,  # the English prompt asks for a translation (pair_type x_untranslated)
        "chosen_source": str | None,  # the text a translated side was translated from; null if untranslated
        "rejected_source": str | None,
        "chosen_source_finish_reason": FinishReason | None,  # how the source's generation ended
        "rejected_source_finish_reason": FinishReason | None,
    },
)


def make_pair(
    *,
    id: str,
    source_lang: str,
    kind: str,
    asks_translation: bool,
    lang: str,
    pair_type: str,
    prompt: list[dict],
    chosen: str | None,
    rejected: str | None,
    chosen_origin: str,
    rejected_origin: str,
    chosen_finish_reason: str,
    rejected_finish_reason: str,
    translation_ok: bool,
    chosen_source: str | None = None,
    chosen_source_finish_reason: str | None = None,
    rejected_source: str | None = None,
    rejected_source_finish_reason: str | None = None,
) -> dict:
    """A PAIR record, checked: `chosen` and `rejected` are the sides' texts (each becomes one assistant message, its
    content null when a translation failed); a side's source and how its generation ended are given only for a
    translated side. Every pair of lidr/pairs.py is built here."""
    record = {  # in the pairs files' order (the check does not depend on it)
        "id": id,
        "source_lang": source_lang,
        "kind": kind,
        "asks_translation": asks_translation,
        "lang": lang,
        "pair_type": pair_type,
        "prompt": prompt,
        "chosen": [{"role": "assistant", "content": chosen}],
        "rejected": [{"role": "assistant", "content": rejected}],
        "chosen_origin": chosen_origin,
        "rejected_origin": rejected_origin,
        "chosen_finish_reason": chosen_finish_reason,
        "rejected_finish_reason": rejected_finish_reason,
        "translation_ok": translation_ok,
        "chosen_source": chosen_source,
        "rejected_source": rejected_source,
        "chosen_source_finish_reason": chosen_source_finish_reason,
        "rejected_source_finish_reason": rejected_source_finish_reason,
    }
    return PAIR.check(record, f"pair {id!r} ({pair_type}, for {source_lang})")


KEPT_PAIR = PAIR.only(  # filter: the pairs that passed the gate, what training reads
    "kept pair", "id", "lang", "source_lang", "pair_type", "prompt", "chosen", "rejected"
)

REJECTED_PAIR = PAIR.extend(  # filter: the pair record, and why it was rejected
    "rejected pair",
    rejected_by=list[str],  # rule names (lidr.gate.RULE_NAMES)
    reasons=list[str],  # "rule[side]: detail", one per finding
)

EVAL_ANSWER = Record(  # eval: one MGSM answer per question and language
    "MGSM answer",
    {
        "id": str,
        "lang": Lang,
        "question": str,
        "gold": str,
        "response": str,
        "predicted": str | None,  # the last number of the response, normalised
        "correct": bool,
        "detected_lang": Lang | None,  # null for an empty response
        "on_target": bool,
        "finish_reason": FinishReason,
        "n_tokens": int,
    },
)

ALPACA_ANSWER = Record(  # eval: one answer per instruction and language (alpaca_eval's output/generator)
    "instruction answer",
    {
        "id": str,
        "lang": Lang,
        "dataset": str,
        "instruction": str,
        "output": str,
        "generator": str,  # the model's folder name
        "finish_reason": FinishReason,
        "n_tokens": int,
        "detected_lang": Lang | None,
        "on_target": bool,
    },
)

JUDGEMENT = Record(  # judge: one comparison of an answer with an opponent's, in both orders (lidr.judge)
    "judgement",
    {
        "comparison": Literal["reference", "previous", "m0"],
        "id": str,
        "lang": Lang,
        "instruction": str,
        "model": str,
        "opponent": str,
        "output": str,
        "opponent_output": str,
        "judge": str,
        "orders": list[dict],  # [{"model_token", "prompt", "logprobs", "preference", "error"}], none if identical
        "preference": float | None,  # the model's, 0..1; null when neither order gave one
        "verdict": Literal["win", "lose", "tie"] | None,
        "orders_used": int,
        "order_disagreement": bool,
        "ok": bool,
        "error": str | None,
        "identical_outputs": bool,
    },
)

SCORE = Record(  # heldout_score_m0: a kept held-out pair's log-probabilities under m0
    "held-out score",
    {
        "id": str,
        "source_lang": Lang,
        "pair_type": PairType,
        "lang": Lang,
        "chosen_logp": float,
        "rejected_logp": float,
        "chosen_tokens": int,
        "rejected_tokens": int,
    },
)

HELDOUT_SCORE = SCORE.extend(  # preference: under a trained model, with its implicit-reward margin against m0
    "held-out score with margin",
    margin=float,
)

LIKELIHOOD = Record(  # likelihood: a reference answer's mean log-likelihood per token under a model
    "reference likelihood",
    {
        "id": str,
        "lang": Lang,
        "logp": float,  # nats per token, over the first n_tokens tokens of the reference answer
        "n_tokens": int,
    },
)

# ---------------------------------------------------------------------------------------------
# Inputs that people write (other fields allowed)

PARALLEL_PROMPT = Record("parallel prompt", {"id": str | int, "lang": Lang, "text": str}, open=True)
ALPACA_INSTRUCTION = Record("instruction", {"id": str | int, "instruction": str}, open=True)
REFERENCE_OUTPUT = Record("reference output", {"instruction": str, "output": str}, open=True)
