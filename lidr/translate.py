"""Self-translation by the model itself, with the reference template and `<translated>` parsing."""

from __future__ import annotations

from lidr.backends import Backend, Decoding, Request
from lidr.generate import generate
from lidr.prompts import TRANSLATION_PRIMER, TRANSLATION_STOP, parse_translation, translation_messages


def translation_decoding(
    max_new_tokens: int, seed: int, loop_span: int = 0, repetition_penalty: float = 1.0
) -> Decoding:
    # Greedy, by default with no repetition penalty (docs/method.md, step 4: the authors' setting for an 8B
    # model; a 135M model loops without one); stop at the closing tag.
    return Decoding(
        max_new_tokens=max_new_tokens,
        repetition_penalty=repetition_penalty,
        stop=(TRANSLATION_STOP,),
        seed=seed,
        loop_span=loop_span,
    )


def translate(
    backend: Backend, jobs: list[dict], decoding: Decoding, model_dir: str, desc: str, cost=None
) -> list[dict]:
    """Each job `{"source_text", "target_lang", ...}` comes back with `text`, `ok`, `finish_reason`, `n_tokens`."""
    requests = [
        Request.chat(translation_messages(j["source_text"], j["target_lang"]), TRANSLATION_PRIMER) for j in jobs
    ]
    completions = generate(backend, requests, decoding, model_dir=model_dir, desc=desc, cost=cost)
    out = []
    for job, c in zip(jobs, completions, strict=True):
        text = parse_translation(c.text)
        ok = bool(text)
        out.append(
            {
                **job,
                "text": text if ok else None,
                "ok": ok,
                "error": None if ok else ("empty translation" if text == "" else "no <translated> span"),
                "raw": c.text,
                "finish_reason": c.finish_reason,
                "n_tokens": c.n_tokens,
            }
        )
    return out
