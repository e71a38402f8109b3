"""Pairwise LLM judge in the manner of AlpacaEval 2's weighted classifier, made multilingual (docs/method.md).

The judge sees an instruction and two outputs named "m" and "M" and must answer with one token. The
preference is the probability mass on the token naming the model's output, renormalised over the two
tokens: alpaca_eval's `logprob_parser` with `is_binarize: false`, on a 0..1 scale (alpaca_eval's 1..2
preference minus 1, with the model as output_2). Every comparison is judged in both orders (the model's
output first, then second) and the two preferences are averaged, which cancels the judge's position bias;
when one order fails (an endpoint error, no log-probabilities, neither token), the other order's preference
is kept. Two identical outputs are not judged: alpaca_eval sets their preference to the midpoint.

Win rate and its standard error as alpaca_eval computes them (`metrics.helpers.AbsoluteScoringRule.
describe_head2head`, `head_to_head` here): win_rate = 100 x the mean preference over instructions,
standard_error = 100 x its standard error of the mean (sample standard deviation / sqrt(n)); a win is a
preference above 0.5, a loss below, a draw exactly 0.5. `order_disagreement` marks a pair whose two orders
do not both lean the same way, which says something about the judge, not about the outputs.

Prompts (`JudgePrompt`):
- `alpaca_eval_prompt()`: the prompt of alpaca_eval's `weighted_alpaca_eval_gpt4_turbo` annotator, the judge
  of the paper's X-AlpacaEval win rates, read from the installed alpaca-eval package
  (`pip install 'lidr[judge]'`) and not retyped, with lidr's multilingual rule added to its task.
  `OpenAIJudge.from_env` uses it.
- `LIDR_PROMPT`: lidr's shorter prompt with the same layout, identifiers and rule. The local judge uses it: the
  long GPT-4 prompt is beyond a small embedded model.

Judges: `LocalJudge` (a model through the project's generation backend: one forward pass per prompt) and
`OpenAIJudge` (any OpenAI-compatible /chat/completions endpoint that returns log-probabilities; its
address, key and model come from LIDR_JUDGE_BASE_URL, LIDR_JUDGE_API_KEY and LIDR_JUDGE_MODEL only).
"""

from __future__ import annotations

import http.client
import importlib.metadata
import importlib.util
import json
import math
import os
import re
import statistics
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import yaml
from tqdm.auto import tqdm

from lidr.backends import Backend, Request
from lidr.errors import JudgeError

TOKENS = ("m", "M")  # output_1 is named "m", output_2 "M"
MULTILINGUAL_RULE = (
    "A good output should be in the same language as the instruction, except when the instruction explicitly "
    "requests the output in a different language."
)
PLACEHOLDERS = ("instruction", "output_1", "output_2")
JUDGE_SYSTEM = (
    "You are a careful and efficient assistant who compares the responses of large language models to the same "
    "instruction and selects the one that people would prefer. The results are used to rank the models."
)
JUDGE_TEMPLATE = (
    """Two language models were given the same instruction. Decide which of their outputs is better.

## Instruction

{
    "instruction": \"\"\"{instruction}\"\"\",
}

## Model outputs

Each output is labelled with the identifier of the model that wrote it.

{
    {
        "model_identifier": "m",
        "output": \"\"\"{output_1}\"\"\"
    },
    {
        "model_identifier": "M",
        "output": \"\"\"{output_2}\"\"\"
    }
}

## Task

Judge the outputs by their quality and relevance to the instruction, from a human point of view. """
    + MULTILINGUAL_RULE
    + """ Reply with the identifier of the better model and nothing else: exactly one character, m or M, with no \
quotes, spaces or new lines."""
)

ENV_URL, ENV_KEY, ENV_MODEL = "LIDR_JUDGE_BASE_URL", "LIDR_JUDGE_API_KEY", "LIDR_JUDGE_MODEL"
ALPACA_EVAL_PACKAGE, ALPACA_EVAL_ANNOTATOR = "alpaca_eval", "weighted_alpaca_eval_gpt4_turbo"
INSTALL_HINT = "pip install 'lidr[judge]'"
_PLACEHOLDER = re.compile(r"\{(" + "|".join(PLACEHOLDERS) + r")\}")


def fill(template: str, **values: str) -> str:
    """`template` with {instruction}, {output_1} and {output_2} replaced by `values`, in one pass: a placeholder
    written inside an instruction or an output stays as it is."""
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


@dataclass(frozen=True)
class JudgePrompt:
    """A system message and a user template with {instruction}, {output_1} ("m") and {output_2} ("M")."""

    source: str  # where the wording comes from, written to the judge metrics
    system: str
    user: str
    top_logprobs: int | None = None  # how many top log-probabilities the annotator asks for (None: the judge's)

    def messages(self, instruction: str, output_1: str, output_2: str) -> list[dict]:
        user = fill(self.user, instruction=instruction, output_1=output_1, output_2=output_2)
        return [{"role": "system", "content": self.system}, {"role": "user", "content": user}]


LIDR_PROMPT = JudgePrompt("lidr", JUDGE_SYSTEM, JUDGE_TEMPLATE)


def judge_messages(instruction: str, output_1: str, output_2: str) -> list[dict]:
    """lidr's own judge prompt (`LIDR_PROMPT`) for one order."""
    return LIDR_PROMPT.messages(instruction, output_1, output_2)


# ---------------------------------------------------------------------------------------------
# alpaca_eval's annotator prompt


def chatml_messages(text: str, where: str) -> list[dict]:
    """A prompt file in alpaca_eval's ChatML layout (<|im_start|>role ... <|im_end|>) as chat messages."""
    text = text.strip()
    if not text.startswith("<|im_start|>"):
        raise JudgeError(f"{where}: expected a prompt in ChatML layout, starting with <|im_start|>")
    messages = []
    for part in text.split("<|im_start|>")[1:]:
        role, _, rest = part.partition("\n")
        messages.append({"role": role.strip(), "content": rest.split("<|im_end|>", 1)[0].strip()})
    return messages


def with_multilingual_rule(user: str, where: str) -> str:
    """The rule inserted after the first sentence of the prompt's "## Task" section."""
    task = user.find("## Task\n")
    end = user.find(". ", task) if task >= 0 else -1
    if end < 0 or "\n" in user[task + len("## Task\n") : end].strip("\n"):
        raise JudgeError(f"{where}: no '## Task' section with a first sentence to add the multilingual rule to")
    return user[: end + 1] + " " + MULTILINGUAL_RULE + user[end + 1 :]


def _package_version(root: Path) -> str | None:
    """The version of the alpaca-eval distribution installed next to the package folder `root`."""
    for dist in importlib.metadata.distributions(path=[str(root.parent)]):
        if (dist.metadata["Name"] or "").lower().replace("_", "-") == "alpaca-eval":
            return dist.version
    return None


def alpaca_eval_prompt(annotator: str = ALPACA_EVAL_ANNOTATOR) -> JudgePrompt:
    """The prompt of alpaca_eval's `annotator`, from the installed alpaca-eval package, with lidr's multilingual
    rule added.

    The package is located without being imported (importing it reads a .env file and loads pandas and openai).
    The annotator's configs.yaml names its prompt file; lidr checks that it is a weighted "m"/"M" classifier
    read from log-probabilities, as lidr scores it.
    """
    spec = importlib.util.find_spec(ALPACA_EVAL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise JudgeError(
            f"eval.judge.kind 'openai' judges with alpaca_eval's {annotator} prompt, but the alpaca-eval package "
            f"is not installed: {INSTALL_HINT}"
        )
    root = Path(next(iter(spec.submodule_search_locations)))
    configs = root / "evaluators_configs"
    config_path = configs / annotator / "configs.yaml"
    if not config_path.is_file():
        raise JudgeError(f"{config_path}: not found; alpaca-eval has no annotator {annotator!r} ({INSTALL_HINT})")
    data = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    config = data.get(annotator) if isinstance(data, dict) else None
    config = config if isinstance(config, dict) else {}
    parser = config.get("completion_parser_kwargs") or {}
    weighted = (
        config.get("fn_completion_parser") == "logprob_parser"
        and parser.get("numerator_token") == TOKENS[0]
        and sorted(parser.get("denominator_tokens") or []) == sorted(TOKENS)
        and parser.get("is_binarize") is False
    )
    if not weighted or not config.get("prompt_template"):
        raise JudgeError(
            f"{config_path}: expected a prompt_template and the weighted logprob_parser on the tokens m and M "
            "(numerator m, denominators m and M, is_binarize false)"
        )
    prompt_path = configs / config["prompt_template"]
    if not prompt_path.is_file():
        raise JudgeError(f"{prompt_path}: not found (the prompt_template of {config_path})")
    messages = chatml_messages(prompt_path.read_text(encoding="utf-8"), str(prompt_path))
    if [m["role"] for m in messages] != ["system", "user"]:
        raise JudgeError(f"{prompt_path}: expected a system and a user message, got {[m['role'] for m in messages]}")
    system, user = (m["content"] for m in messages)
    counts = {p: user.count("{" + p + "}") for p in PLACEHOLDERS}
    if any(c != 1 for c in counts.values()):
        raise JudgeError(f"{prompt_path}: expected each of {{instruction}}, {{output_1}}, {{output_2}} once, {counts}")
    version = _package_version(root)
    top = (config.get("completions_kwargs") or {}).get("top_logprobs")
    return JudgePrompt(
        source=f"alpaca_eval{'==' + version if version else ''}:{annotator}+multilingual_rule",
        system=system,
        user=with_multilingual_rule(user, str(prompt_path)),
        top_logprobs=int(top) if top else None,
    )


# ---------------------------------------------------------------------------------------------
# Preferences and win rates


def preference(logprobs: dict[str, float], token: str) -> float | None:
    """Probability mass on `token` among the two identifiers; None when the judge gave neither.

    A token absent from `logprobs` (outside an API's top log-probabilities) has no mass.
    """
    masses = {t: math.exp(logprobs[t]) for t in TOKENS if t in logprobs and logprobs[t] is not None}
    total = sum(masses.values())
    if total <= 0.0:
        return None
    return masses.get(token, 0.0) / total


def verdict_of(pref: float) -> str:
    """alpaca_eval's head-to-head outcome of one preference: a draw only exactly at the midpoint."""
    return "win" if pref > 0.5 else "lose" if pref < 0.5 else "tie"


def both_orders(first: float | None, second: float | None) -> dict:
    """Combine the model's preference with its output shown first and shown second.

    The mean of the two, or the one that exists when the other order failed (`orders_used` 1).
    `order_disagreement`: both orders exist and do not both lean the same way.
    """
    used = [p for p in (first, second) if p is not None]
    if not used:
        return {
            "preference": None,
            "verdict": None,
            "orders_used": 0,
            "order_disagreement": False,
            "ok": False,
            "error": "the judge gave no preference in either order",
        }
    pref = sum(used) / len(used)
    agree = len(used) < 2 or (first > 0.5 and second > 0.5) or (first < 0.5 and second < 0.5)
    return {
        "preference": pref,
        "verdict": verdict_of(pref),
        "orders_used": len(used),
        "order_disagreement": not agree,
        "ok": True,
        "error": None,
    }


def head_to_head(preferences: Sequence[float | None]) -> dict:
    """alpaca_eval's description of a head-to-head (metrics.helpers.AbsoluteScoringRule.describe_head2head).

    `preferences` are the model's, 0..1; None (no preference) is left out, as alpaca_eval drops NaN.
    win_rate = 100 x mean; standard_error = 100 x sample standard deviation / sqrt(n_total) (pandas' sem,
    None below 2 preferences); n_wins > 0.5, n_wins_base < 0.5, n_draws == 0.5; discrete_win_rate =
    100 x (n_wins + n_draws / 2) / n_total (alpaca_eval's ZeroOneScoringRule).
    """
    ps = [p for p in preferences if p is not None and not math.isnan(p)]
    n = len(ps)
    wins, base, draws = sum(p > 0.5 for p in ps), sum(p < 0.5 for p in ps), sum(p == 0.5 for p in ps)
    return {
        "win_rate": 100 * statistics.fmean(ps) if n else None,
        "standard_error": 100 * statistics.stdev(ps) / math.sqrt(n) if n > 1 else None,
        "discrete_win_rate": 100 * (wins + draws / 2) / n if n else None,
        "n_wins": wins,
        "n_wins_base": base,
        "n_draws": draws,
        "n_total": n,
    }


# ---------------------------------------------------------------------------------------------
# Judges


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


# ---------------------------------------------------------------------------------------------
# Comparisons


def judge_pairs(judge: Judge, items: Sequence[dict]) -> list[dict]:
    """Judge each `{"id", "lang", "instruction", "output", "opponent_output"}` in both orders.

    Returns one record per item with, per order, the prompt, the judge's log-probabilities (None when the
    request failed), the model's preference and the error; then `both_orders` of the two preferences
    (`preference`, `verdict`, `orders_used`, `order_disagreement`, `ok`, `error`) and `identical_outputs`.
    Identical outputs are not sent to the judge: their preference is 0.5, a draw, as in alpaca_eval.
    """
    judged = [k for k, it in enumerate(items) if it["output"] != it["opponent_output"]]
    prompts = []
    for k in judged:
        it = items[k]
        prompts.append(judge.prompt.messages(it["instruction"], it["output"], it["opponent_output"]))  # model is "m"
        prompts.append(judge.prompt.messages(it["instruction"], it["opponent_output"], it["output"]))  # model is "M"
    answers = judge.logprobs(prompts) if prompts else []
    at = {k: 2 * i for i, k in enumerate(judged)}
    records = []
    for k, it in enumerate(items):
        if k not in at:
            same = {"preference": 0.5, "verdict": "tie", "orders_used": 0, "order_disagreement": False}
            records.append(
                {**it, "judge": judge.name, "orders": [], **same, "ok": True, "error": None, "identical_outputs": True}
            )
            continue
        orders = []
        for j, token in enumerate(TOKENS):
            answer = answers[at[k] + j]
            if isinstance(answer, Exception):
                lp, pref, error = None, None, str(answer)
            else:
                lp, pref = answer, preference(answer, token)
                error = None if pref is not None else "the judge named neither output"
            orders.append(
                {
                    "model_token": token,
                    "prompt": judge.prompt_text(prompts[at[k] + j]),
                    "logprobs": lp,
                    "preference": pref,
                    "error": error,
                }
            )
        records.append(
            {
                **it,
                "judge": judge.name,
                "orders": orders,
                **both_orders(orders[0]["preference"], orders[1]["preference"]),
                "identical_outputs": False,
            }
        )
    return records
