"""The judges: each returns, per prompt, the log-probabilities of the two verdict tokens "m" and "M".

`LocalJudge`: a model through the project's generation backend, one forward pass per prompt, with lidr's
prompt. `OpenAIJudge`: any OpenAI-compatible /chat/completions endpoint that returns log-probabilities, with
alpaca_eval's annotator prompt; its address, key and model come from LIDR_JUDGE_BASE_URL, LIDR_JUDGE_API_KEY
and LIDR_JUDGE_MODEL only.
"""

from __future__ import annotations

import http.client
import json
import math
import os
import time
import urllib.error
import urllib.request
from typing import Protocol

from tqdm.auto import tqdm

from lidr.backends import Backend, Request
from lidr.errors import JudgeError
from lidr.judge.prompts import LIDR_PROMPT, TOKENS, JudgePrompt, alpaca_eval_prompt

ENV_URL, ENV_KEY, ENV_MODEL = "LIDR_JUDGE_BASE_URL", "LIDR_JUDGE_API_KEY", "LIDR_JUDGE_MODEL"


class Judge(Protocol):
    name: str
    prompt: JudgePrompt

    def prompt_text(self, messages: list[dict]) -> str: ...

    def logprobs(self, prompts: list[list[dict]]) -> list[dict[str, float] | JudgeError]:
        """Per prompt, the log-probabilities of "m" and "M", or the error that left that prompt unjudged."""
        ...


class LocalJudge:
    """A model loaded by the generation backend; next-token log-probabilities of "m" and "M".

    It judges with lidr's own prompt (`LIDR_PROMPT`), not alpaca_eval's: the long GPT-4 prompt is beyond a
    small model.
    """

    prompt = LIDR_PROMPT

    def __init__(self, backend: Backend, batch_size: int, label: str):
        self.backend, self.batch_size, self.name = backend, batch_size, f"local:{label}"

    def prompt_text(self, messages: list[dict]) -> str:
        return self.backend.render(Request.chat(messages))

    def logprobs(self, prompts: list[list[dict]]) -> list[dict[str, float] | JudgeError]:
        texts = [self.prompt_text(m) for m in prompts]
        out: list[dict[str, float] | JudgeError] = []
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


class _Fatal(JudgeError):
    """An endpoint error that no other request would escape (a wrong key, address or model)."""


class OpenAIJudge:
    """Any OpenAI-compatible endpoint that returns log-probabilities (OpenAI, a local vLLM server, ...).

    A request that still fails after the retries leaves its order unjudged and the run goes on; an
    authentication or address error (HTTP 401, 403, 404, an unreachable host), `max_consecutive_failures`
    failures in a row, or a batch in which every request failed stops it.
    """

    name = "openai-compatible"
    FATAL_HTTP = (401, 403, 404)

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None,
        *,
        prompt: JudgePrompt,
        top_logprobs: int | None = None,
        retries: int = 3,
        max_consecutive_failures: int = 10,
    ):
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model, self._key, self.prompt, self.retries = model, api_key, prompt, retries
        self.top_logprobs = top_logprobs or prompt.top_logprobs or 20
        self.max_consecutive_failures = max_consecutive_failures

    @classmethod
    def from_env(cls, prompt: JudgePrompt | None = None) -> OpenAIJudge:
        """The endpoint of the environment, judging with alpaca_eval's annotator prompt unless `prompt` is given."""
        url, model = os.environ.get(ENV_URL), os.environ.get(ENV_MODEL)
        missing = [k for k, v in ((ENV_URL, url), (ENV_MODEL, model)) if not v]
        if missing:
            raise JudgeError(
                f"eval.judge.kind is 'openai' but {', '.join(missing)} is not set; set {ENV_URL} (e.g. "
                f"https://api.openai.com/v1 or http://127.0.0.1:8000/v1), {ENV_MODEL} and, if needed, {ENV_KEY}"
            )
        return cls(url, model, os.environ.get(ENV_KEY), prompt=prompt or alpaca_eval_prompt())

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
                if e.code in self.FATAL_HTTP:
                    raise _Fatal(f"the judge endpoint answered HTTP {e.code} ({e.reason})") from None
                if e.code in (429, 500, 502, 503, 504) and attempt < self.retries:
                    time.sleep(2**attempt)
                    continue
                raise JudgeError(f"the judge endpoint answered HTTP {e.code} ({e.reason})") from None
            except (OSError, http.client.HTTPException, json.JSONDecodeError, UnicodeDecodeError) as e:
                # OSError: URLError, timeouts, dropped connections
                if attempt < self.retries:
                    time.sleep(2**attempt)
                    continue
                if isinstance(e, urllib.error.URLError) and not isinstance(e.reason, TimeoutError):
                    raise _Fatal(f"the judge endpoint could not be reached: {e.reason}") from None
                raise JudgeError(f"the judge endpoint timed out or answered badly: {e!r}") from None
        raise AssertionError("unreachable")

    def logprobs(self, prompts: list[list[dict]]) -> list[dict[str, float] | JudgeError]:
        out: list[dict[str, float] | JudgeError] = []
        in_a_row = 0
        for messages in tqdm(prompts, desc="judge", unit="req"):
            try:
                out.append(parse_openai_logprobs(self._post(messages)))
                in_a_row = 0
            except _Fatal:
                raise
            except JudgeError as e:
                out.append(e)
                in_a_row += 1
                if in_a_row >= self.max_consecutive_failures:
                    raise JudgeError(f"{in_a_row} judge requests in a row failed; the last: {e}") from None
        if out and all(isinstance(r, JudgeError) for r in out):
            raise JudgeError(f"every judge request failed; the first: {out[0]}")
        return out
