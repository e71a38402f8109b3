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
"""
