"""The generation driver: deduplication, length-sorted batches, a resumable journal, a progress bar.

Identical prompts are generated once. Requests are sorted longest first and cut into chunks of
`chunk_size`; the backend decodes a chunk (the transformers backend `batch_size` rows at a time;
in a chunk larger than that, a waiting prompt takes the place of each row that ends), and each
finished chunk is appended to a journal (outside the DVC outputs) keyed by the model, the
decoding settings and each prompt. The journal is also a cache: a prompt it already holds
(answered by another stage, or another place of the same stage, with the same model and
settings) is not generated again. Only the prompts it lacks are sorted and chunked; a stage
killed part-way and rerun finds whole chunks of that same sorted order done, so the remaining
chunks are the same as in an uninterrupted run, and so is the output.

`decoding_for(generation, seed, kind, evaluation)` is every stage's decoding settings, read from params in one place.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import typing
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from tqdm.auto import tqdm

from lidr.backends import Backend, Completion, Decoding, Request
from lidr.model import model_fingerprint
from lidr.prompts import TRANSLATION_STOP

if TYPE_CHECKING:
    from lidr.config import EvalParams, GenerationParams

JOURNAL_DIR = Path(os.environ.get("LIDR_JOURNAL_DIR", ".lidr/journal"))

# What is generated: an answer to a prompt (generate; the generation benchmark), a self-translation
# (translate_prompts, translate_responses), an MGSM answer or an answer to an X-AlpacaEval instruction (eval)
DecodingKind = Literal["answer", "translation", "mgsm", "instruction"]
DECODING_KINDS: tuple[str, ...] = typing.get_args(DecodingKind)


def decoding_for(
    generation: GenerationParams, seed: int, kind: DecodingKind, evaluation: EvalParams | None = None
) -> Decoding:
    """The decoding settings of `kind`, from params (`generation`, the top-level `seed` and, for the evaluation's
    kinds, `eval`): greedy with `seed` and `generation.loop_span` for every kind; the length limit and repetition
    penalty differ.

    - answer: generation.max_new_tokens and generation.repetition_penalty;
    - translation: generation.translation_max_new_tokens and generation.translation_repetition_penalty (the
      authors used none for an 8B model, docs/method.md, step 4; a 135M model loops without one), stopping at
      the closing tag (kept in the text, which `lidr.prompts.parse_translation` reads);
    - mgsm: eval.max_new_tokens, generation.repetition_penalty;
    - instruction: eval.alpaca.max_new_tokens (0: eval.max_new_tokens), generation.repetition_penalty.
    """
    g = generation
    if kind in ("mgsm", "instruction") and evaluation is None:
        raise ValueError(f"the {kind} decoding reads the eval section: pass it")
    if kind == "translation":
        max_new_tokens, penalty = g.translation_max_new_tokens, g.translation_repetition_penalty
        stop = (TRANSLATION_STOP,)
    elif kind == "answer":
        max_new_tokens, penalty, stop = g.max_new_tokens, g.repetition_penalty, ()
    elif kind == "mgsm":
        max_new_tokens, penalty, stop = evaluation.max_new_tokens, g.repetition_penalty, ()
    elif kind == "instruction":
        max_new_tokens = evaluation.alpaca.max_new_tokens or evaluation.max_new_tokens
        penalty, stop = g.repetition_penalty, ()
    else:
        raise ValueError(f"unknown decoding kind {kind!r}: expected one of {', '.join(DECODING_KINDS)}")
    return Decoding(
        max_new_tokens=max_new_tokens, repetition_penalty=penalty, stop=stop, seed=seed, loop_span=g.loop_span
    )


def _request_key(prefix: str, text: str) -> str:
    return hashlib.sha256((prefix + "\0" + text).encode()).hexdigest()


class Journal:
    """Append-only JSONL of finished requests; a torn last line (a kill mid-write) is ignored."""

    def __init__(self, path: Path | None):
        self.path = path
        self.done: dict[str, Completion] = {}
        if path is None or not path.exists():
            return
        data = path.read_bytes()
        if data and not data.endswith(b"\n"):  # cut the torn line, or the next append would run into it
            data = data[: data.rfind(b"\n") + 1]
            with path.open("r+b") as f:
                f.truncate(len(data))
        for line in data.decode("utf-8", errors="replace").splitlines():
            try:
                rec = json.loads(line)
                self.done[rec["key"]] = Completion(**rec["completion"])
            except (json.JSONDecodeError, KeyError, TypeError):
                continue

    def append(self, items: list[tuple[str, Completion]]) -> None:
        for key, c in items:
            self.done[key] = c
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as f:
            f.write("".join(json.dumps({"key": k, "completion": dataclasses.asdict(c)}) + "\n" for k, c in items))
            f.flush()
            os.fsync(f.fileno())


def generate(
    backend: Backend,
    requests: list[Request],
    decoding: Decoding,
    *,
    model_dir: str | Path,
    desc: str = "generate",
    journal: bool = True,
    cost=None,
) -> list[Completion]:
    """Completions for `requests`, in order; `cost` (a `lidr.stage.Cost`) counts what was generated here."""
    texts = [backend.render(r) for r in requests]
    unique = list(dict.fromkeys(texts))
    prefix = json.dumps(
        [
            backend.name,
            model_fingerprint(model_dir),
            dataclasses.asdict(decoding),
            backend.batch_size,
            backend.chunk_size,
            # only when guessing: journals written without guesses (vLLM, draft_tokens 0) keep their keys
            *([backend.draft_tokens] if getattr(backend, "draft_tokens", 0) else []),
            # likewise the prefill groups' size (the transformers backend's; 0 or vLLM: one forward pass)
            *([{"prefill_tokens": backend.prefill_tokens}] if getattr(backend, "prefill_tokens", 0) else []),
        ],
        sort_keys=True,
    )
    keys = {t: _request_key(prefix, t) for t in unique}
    journal_path = JOURNAL_DIR / f"{hashlib.sha256(prefix.encode()).hexdigest()[:16]}.jsonl" if journal else None
    log = Journal(journal_path)
    lengths = {t: backend.prompt_length(t) for t in unique}
    order = sorted((t for t in unique if keys[t] not in log.done), key=lambda t: (-lengths[t], keys[t]))
    chunks = [order[i : i + backend.chunk_size] for i in range(0, len(order), backend.chunk_size)]
    with tqdm(total=len(unique), initial=len(unique) - len(order), desc=desc, unit="req", dynamic_ncols=True) as bar:
        generated: list[Completion] = []
        for chunk in chunks:
            outs = backend.generate_batch(chunk, decoding)
            log.append([(keys[t], c) for t, c in zip(chunk, outs, strict=True)])
            generated += outs
            bar.update(len(chunk))
            bar.set_postfix(tokens=sum(c.n_tokens for c in generated))
    if cost is not None:
        cost.count(len(texts), generated)
    return [log.done[keys[t]] for t in texts]
