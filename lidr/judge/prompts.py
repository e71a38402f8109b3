"""The judge's prompts: the two outputs are named "m" and "M", and the judge must answer with one of them.

- `alpaca_eval_prompt()`: the prompt of alpaca_eval's `weighted_alpaca_eval_gpt4_turbo` annotator, the judge
  of the paper's X-AlpacaEval win rates, read from the installed alpaca-eval package
  (`pip install 'lidr[judge]'`) and not retyped, with lidr's multilingual rule added to its task.
  `OpenAIJudge.from_env` (lidr.judge.clients) uses it.
- `LIDR_PROMPT`: lidr's shorter prompt with the same layout, identifiers and rule. The local judge uses it: the
  long GPT-4 prompt is beyond a small embedded model.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

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
