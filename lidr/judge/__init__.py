"""Pairwise LLM judge in the manner of AlpacaEval 2's weighted classifier, made multilingual (docs/method.md).

The judge sees an instruction and two outputs named "m" and "M" and must answer with one token; the
preference is the probability mass on the token naming the model's output, renormalised over the two tokens.
Every comparison is judged in both orders and the two preferences are averaged, which cancels the judge's
position bias. One module per concern:

- `prompts.py`: lidr's prompt (`LIDR_PROMPT`) and alpaca_eval's annotator prompt (`alpaca_eval_prompt`);
- `clients.py`: the judges, `LocalJudge` (the project's generation backend) and `OpenAIJudge` (an
  OpenAI-compatible endpoint);
- `compare.py`: the comparison loop, `judge_pairs`;
- `winrate.py`: the arithmetic: preferences, the two orders combined, alpaca_eval's win rate and standard
  error, the judge stage's per-language tables and metrics.

The names below are importable from `lidr.judge` itself.
"""

from lidr.judge.clients import ENV_KEY, ENV_MODEL, ENV_URL, Judge, LocalJudge, OpenAIJudge, parse_openai_logprobs
from lidr.judge.compare import judge_pairs
from lidr.judge.prompts import (
    ALPACA_EVAL_ANNOTATOR,
    ALPACA_EVAL_PACKAGE,
    INSTALL_HINT,
    JUDGE_SYSTEM,
    JUDGE_TEMPLATE,
    LIDR_PROMPT,
    MULTILINGUAL_RULE,
    PLACEHOLDERS,
    TOKENS,
    JudgePrompt,
    alpaca_eval_prompt,
    chatml_messages,
    fill,
    judge_messages,
    with_multilingual_rule,
)
from lidr.judge.winrate import both_orders, head_to_head, preference, summarise, verdict_mass, verdict_of, win_rates

__all__ = [
    "ALPACA_EVAL_ANNOTATOR",
    "ALPACA_EVAL_PACKAGE",
    "ENV_KEY",
    "ENV_MODEL",
    "ENV_URL",
    "INSTALL_HINT",
    "JUDGE_SYSTEM",
    "JUDGE_TEMPLATE",
    "LIDR_PROMPT",
    "MULTILINGUAL_RULE",
    "PLACEHOLDERS",
    "TOKENS",
    "Judge",
    "JudgePrompt",
    "LocalJudge",
    "OpenAIJudge",
    "alpaca_eval_prompt",
    "both_orders",
    "chatml_messages",
    "fill",
    "head_to_head",
    "judge_messages",
    "judge_pairs",
    "parse_openai_logprobs",
    "preference",
    "summarise",
    "verdict_mass",
    "verdict_of",
    "win_rates",
    "with_multilingual_rule",
]
