"""Self-translation by the model itself, with the reference template and `<translated>` parsing."""

from __future__ import annotations

from lidr.backends import Backend, Decoding, Request
from lidr.generate import generate
from lidr.prompts import TRANSLATION_PRIMER, parse_translation, translation_messages


def translate(
    backend: Backend, jobs: list[dict], decoding: Decoding, model_dir: str, desc: str, cost=None
) -> list[dict]:
    """Each job `{"source_text", "target_lang", ...}` comes back with `text`, `ok`, `finish_reason`, `n_tokens`;
    `decoding` is `lidr.generate.decoding_for(generation, seed, "translation")`."""
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
