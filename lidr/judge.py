"""Pairwise LLM judge in the manner of AlpacaEval 2's weighted classifier, made multilingual (METHOD.md).

The judge sees an instruction and two outputs named "m" and "M" and must answer with one token. The
preference is the probability mass on the token naming the model's output, renormalised over the two
tokens. Every comparison is judged in both orders (the model's output first, then second) and the two
preferences are averaged, which cancels the judge's position bias. Head-to-head verdicts: a win when both
orders prefer the model, a loss when both prefer the opponent, a tie when the orders disagree.

Judges: `LocalJudge` (a model through the project's generation backend: one forward pass per prompt) and
`OpenAIJudge` (any OpenAI-compatible /chat/completions endpoint that returns log-probabilities; its
address, key and model come from LIDR_JUDGE_BASE_URL, LIDR_JUDGE_API_KEY and LIDR_JUDGE_MODEL only).
"""

from __future__ import annotations

import json
import math
import os
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Protocol

from tqdm.auto import tqdm

from lidr.backends import Backend, Request
from lidr.errors import JudgeError

TOKENS = ("m", "M")  # output_1 is named "m", output_2 "M"
MULTILINGUAL_RULE = (
    "A good output should be in the same language as the instruction, except when the instruction explicitly "
    "requests the output in a different language."
)
JUDGE_SYSTEM = (
    "You are a careful and efficient assistant who compares the responses of large language models to the same "
    "instruction and selects the one that people would prefer. The results are used to rank the models."
)
JUDGE_TEMPLATE = """Two language models were given the same instruction. Decide which of their outputs is better.

## Instruction

{{
    "instruction": \"\"\"{instruction}\"\"\",
}}

## Model outputs

Each output is labelled with the identifier of the model that wrote it.

{{
    {{
        "model_identifier": "m",
        "output": \"\"\"{output_1}\"\"\"
    }},
    {{
        "model_identifier": "M",
        "output": \"\"\"{output_2}\"\"\"
    }}
}}

## Task

Judge the outputs by their quality and relevance to the instruction, from a human point of view. {rule} \
Reply with the identifier of the better model and nothing else: exactly one character, m or M, with no quotes, \
spaces or new lines."""

ENV_URL, ENV_KEY, ENV_MODEL = "LIDR_JUDGE_BASE_URL", "LIDR_JUDGE_API_KEY", "LIDR_JUDGE_MODEL"


def judge_messages(instruction: str, output_1: str, output_2: str) -> list[dict]:
    user = JUDGE_TEMPLATE.format(instruction=instruction, output_1=output_1, output_2=output_2, rule=MULTILINGUAL_RULE)
    return [{"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": user}]


def preference(logprobs: dict[str, float], token: str) -> float | None:
    """Probability mass on `token` among the two identifiers; None when the judge gave neither.

    A token absent from `logprobs` (outside an API's top log-probabilities) has no mass.
    """
    masses = {t: math.exp(logprobs[t]) for t in TOKENS if t in logprobs and logprobs[t] is not None}
    total = sum(masses.values())
    if total <= 0.0:
        return None
    return masses.get(token, 0.0) / total


def both_orders(first: float | None, second: float | None) -> dict:
    """Combine the model's preference with its output shown first and shown second."""
    if first is None or second is None:
        return {"preference": None, "verdict": None, "ok": False, "error": "the judge named neither output"}
    if first > 0.5 and second > 0.5:
        verdict = "win"
    elif first < 0.5 and second < 0.5:
        verdict = "lose"
    else:
        verdict = "tie"
    return {"preference": (first + second) / 2, "verdict": verdict, "ok": True, "error": None}


# ---------------------------------------------------------------------------------------------
# Judges


class Judge(Protocol):
    name: str

    def prompt_text(self, messages: list[dict]) -> str: ...

    def logprobs(self, prompts: list[list[dict]]) -> list[dict[str, float]]: ...


class LocalJudge:
    """A model loaded by the generation backend; next-token log-probabilities of "m" and "M"."""

    def __init__(self, backend: Backend, batch_size: int, label: str):
        self.backend, self.batch_size, self.name = backend, batch_size, f"local:{label}"

    def prompt_text(self, messages: list[dict]) -> str:
        return self.backend.render(Request.chat(messages))

    def logprobs(self, prompts: list[list[dict]]) -> list[dict[str, float]]:
        texts = [self.prompt_text(m) for m in prompts]
        out: list[dict[str, float]] = []
        for i in tqdm(range(0, len(texts), self.batch_size), desc="judge", unit="batch", dynamic_ncols=True):
            out += self.backend.token_logprobs(texts[i : i + self.batch_size], TOKENS)
        return out


def parse_openai_logprobs(body: dict) -> dict[str, float]:
    """Log-probabilities of "m" and "M" from a /chat/completions answer (first generated token)."""
    try:
        first = body["choices"][0]["logprobs"]["content"][0]
    except (KeyError, IndexError, TypeError):
        raise JudgeError("the judge endpoint returned no log-probabilities (choices[0].logprobs.content)") from None
    masses: dict[str, float] = {}
    # top_logprobs holds the sampled token too; spelling variants such as " m" add their mass to "m"
    for entry in first.get("top_logprobs") or [first]:
        token = (entry.get("token") or "").strip()
        if token in TOKENS and entry.get("logprob") is not None:
            masses[token] = masses.get(token, 0.0) + math.exp(float(entry["logprob"]))
    return {t: math.log(m) for t, m in masses.items() if m > 0.0}


class OpenAIJudge:
    """Any OpenAI-compatible endpoint that returns log-probabilities (OpenAI, a local vLLM server, ...)."""

    name = "openai-compatible"

    def __init__(self, base_url: str, model: str, api_key: str | None, *, top_logprobs: int = 20, retries: int = 3):
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model, self._key, self.top_logprobs, self.retries = model, api_key, top_logprobs, retries

    @classmethod
    def from_env(cls) -> OpenAIJudge:
        url, model = os.environ.get(ENV_URL), os.environ.get(ENV_MODEL)
        missing = [k for k, v in ((ENV_URL, url), (ENV_MODEL, model)) if not v]
        if missing:
            raise JudgeError(
                f"eval.judge.kind is 'openai' but {', '.join(missing)} is not set; set {ENV_URL} (e.g. "
                f"https://api.openai.com/v1 or http://127.0.0.1:8000/v1), {ENV_MODEL} and, if needed, {ENV_KEY}"
            )
        return cls(url, model, os.environ.get(ENV_KEY))

    def prompt_text(self, messages: list[dict]) -> str:
        return json.dumps(messages, ensure_ascii=False)

    def _post(self, messages: list[dict]) -> dict:
        payload = {
            "model": self.model,
            "messages": messages,
            "max_tokens": 1,
            "temperature": 0.0,
            "logprobs": True,
            "top_logprobs": self.top_logprobs,
        }
        headers = {"Content-Type": "application/json"}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        req = urllib.request.Request(self.url, json.dumps(payload).encode(), headers, method="POST")
        for attempt in range(self.retries + 1):
            try:
                with urllib.request.urlopen(req, timeout=120) as resp:
                    return json.loads(resp.read().decode("utf-8"))
            except urllib.error.HTTPError as e:
                if e.code in (429, 500, 502, 503, 504) and attempt < self.retries:
                    time.sleep(2**attempt)
                    continue
                raise JudgeError(f"the judge endpoint answered HTTP {e.code} ({e.reason})") from None
            except (urllib.error.URLError, TimeoutError, json.JSONDecodeError) as e:
                if attempt < self.retries:
                    time.sleep(2**attempt)
                    continue
                raise JudgeError(f"the judge endpoint could not be reached or answered badly: {e}") from None
        raise AssertionError("unreachable")

    def logprobs(self, prompts: list[list[dict]]) -> list[dict[str, float]]:
        return [parse_openai_logprobs(self._post(m)) for m in tqdm(prompts, desc="judge", unit="req")]


# ---------------------------------------------------------------------------------------------
# Comparisons


def judge_pairs(judge: Judge, items: Sequence[dict]) -> list[dict]:
    """Judge each `{"id", "lang", "instruction", "output", "opponent_output"}` in both orders.

    Returns one record per item with the two prompts, the two judges' log-probabilities, the model's
    preference in each order, their mean (`preference`), the head-to-head `verdict`, `ok` and `error`.
    """
    prompts = []
    for it in items:
        prompts.append(judge_messages(it["instruction"], it["output"], it["opponent_output"]))  # model is "m"
        prompts.append(judge_messages(it["instruction"], it["opponent_output"], it["output"]))  # model is "M"
    logprobs = judge.logprobs(prompts)
    records = []
    for k, it in enumerate(items):
        orders = []
        for j, token in enumerate(TOKENS):
            lp = logprobs[2 * k + j]
            orders.append(
                {
                    "model_token": token,
                    "prompt": judge.prompt_text(prompts[2 * k + j]),
                    "logprobs": lp,
                    "preference": preference(lp, token),
                }
            )
        records.append(
            {
                **it,
                "judge": judge.name,
                "orders": orders,
                **both_orders(orders[0]["preference"], orders[1]["preference"]),
            }
        )
    return records
