"""params.yaml -> one loader -> frozen, validated objects.

Every stage reads its settings through `load_params()`. Unknown keys, missing keys, wrong types,
out-of-range values and unknown language codes raise `ParamsError` naming the key and what is
expected, before any model is loaded. `python -m lidr.check` runs the same checks alone.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from lidr.errors import ParamsError
from lidr.languages import UnknownLanguageError, language_name

EMBEDDED_MODEL = "embedded"
BASE_MODEL_KEY = "m0"
CHAIN_NAME = re.compile(r"[a-z][a-z0-9_]*")


@dataclass(frozen=True)
class ModelParams:
    base: str = EMBEDDED_MODEL  # "embedded", a hub id such as meta-llama/Meta-Llama-3-8B-Instruct, or a local dir
    trust_remote_code: bool = False
    dtype: Literal["float32", "bfloat16", "auto"] = "float32"


@dataclass(frozen=True)
class LanguageParams:
    dominant: str = "en"
    others: tuple[str, ...] = ("es", "de", "fr", "ru")

    @property
    def all(self) -> tuple[str, ...]:
        return (self.dominant, *self.others)


@dataclass(frozen=True)
class Iteration:
    chain: str  # the chain it belongs to (a key of `chains`); its key is "<chain>-<name>", e.g. general-m1
    start: str  # the model this iteration trains from: "m0" or an earlier iteration of the same chain
    round: int  # which disjoint block of the chain's prompts it samples


@dataclass(frozen=True)
class PromptSource:
    path: str  # local .json/.jsonl file, or an HF dataset id
    kind: Literal["general", "math"]
    n: int  # prompts taken from this source per iteration
    split: str = "train"
    config: str | None = None  # hub dataset configuration, e.g. "main" for openai/gsm8k
    field: str | None = None  # text field; default: "instruction", "question" or "prompt", whichever exists
    id_field: str | None = None  # default: "id" when present, else the row number


@dataclass(frozen=True)
class ChainParams:
    """One chain's prompts: each chain trains its own models from m0 (the authors ran two: general, math)."""

    sources: tuple[PromptSource, ...]
    parallel: str | None  # JSONL of {"id", "lang", "text"}: prompts already translated; null: self-translate


@dataclass(frozen=True)
class HeldoutParams:
    """A fixed block of prompts that no iteration trains on: m0's LIDR pairs on it measure each model."""

    sources: tuple[PromptSource, ...] = ()  # all of each source's first n prompts (seeded order); none: no block
    parallel: str | None = None  # JSONL of {"id", "lang", "text"}: the block's prompts already translated


@dataclass(frozen=True)
class GenerationParams:
    backend: Literal["transformers", "vllm"] = "transformers"
    batch_size: int = 64  # rows decoded together (transformers); more in a chunk wait for a free place
    chunk_size: int = 64  # prompts handed to the backend at once and journaled together
    max_new_tokens: int = 160
    translation_max_new_tokens: int = 200
    repetition_penalty: float = 1.1
    # self-translation; 1.0 (none) is the authors' setting for an 8B model
    translation_repetition_penalty: float = 1.0
    threads: int = 0  # torch threads on CPU; 0 keeps torch's default
    gpu_memory_utilization: float = 0.85  # vLLM only
    tensor_parallel_size: int = 1  # vLLM only
    loop_span: int = 48  # end a sequence whose last loop_span tokens repeat a short block; 0: off
    draft_tokens: int = 4  # prompt-lookup guesses checked per row and step while few rows run (transformers); 0: off


Side = Literal["chosen", "rejected"]

# Characters of a text in a language per character of the same text in English, as a [low, high]
# band: Chinese and Japanese take about a third of the characters, Romance and Slavic languages a
# little more. Wide on purpose: the rule catches truncated, looping or empty translations, not style.
DEFAULT_LENGTH_BANDS: dict[str, tuple[float, float]] = {
    "en": (0.5, 2.0),
    "es": (0.6, 2.4),
    "fr": (0.6, 2.4),
    "de": (0.6, 2.4),
    "ru": (0.55, 2.3),
    "sw": (0.6, 2.4),
    "bn": (0.5, 2.2),
    "te": (0.5, 2.3),
    "th": (0.45, 2.1),
    "ja": (0.15, 0.9),
    "zh": (0.12, 0.8),
}


@dataclass(frozen=True)
class RuleSwitch:
    enabled: bool = True


@dataclass(frozen=True)
class SidedRule:
    enabled: bool = True
    sides: tuple[Side, ...] = ("chosen", "rejected")


@dataclass(frozen=True)
class TruncatedRule:
    enabled: bool = True
    sides: tuple[Side, ...] = ("chosen",)
    include_source: bool = True  # a translation of a response cut by the token limit is cut too


@dataclass(frozen=True)
class WrongLanguageRule:
    enabled: bool = True
    sides: tuple[Side, ...] = ("chosen",)
    min_confidence: float = 0.9  # below this the detector is unsure and the side passes
    min_chars: int = 20  # shorter texts are too short to identify and pass
    confusers: tuple[str, ...] = ("it", "pt", "nl", "uk")  # also considered by the detector


@dataclass(frozen=True)
class DegenerateRule:
    """Repetition judged against the text's length and, for a translation, against its source."""

    enabled: bool = True
    sides: tuple[Side, ...] = ("chosen", "rejected")
    ngram: int = 4  # words (or CJK characters) per n-gram
    min_copies: int = 3  # a loop or a line with fewer copies is never degenerate
    ngram_copies: int = 4  # nor an n-gram with fewer (a weaker sign than a whole line or block)
    min_words: int = 8  # nor one whose copies cover fewer words ("No, no, no.")
    max_share: float = 0.35  # degenerate: a loop, line or n-gram making up more of the text (words; lines)
    loop_copies: int = 4  # degenerate at any length: a block repeated back to back this many times...
    loop_words: int = 16  # ...over this many words
    tail_copies: int = 4  # degenerate: the text ends with one block of <= 16 characters this many times...
    tail_chars: int = 32  # ...over this many characters (loops of digits, emoji or letters inside a word)
    source_ratio: float = 0.75  # a translation passes a repetition its source has this share of the copies of


@dataclass(frozen=True)
class LengthRatioRule:
    enabled: bool = True
    sides: tuple[Side, ...] = ("chosen", "rejected")
    min_chars: int = 20  # sources shorter than this are not measured
    bands: dict[str, tuple[float, ...]] = field(default_factory=lambda: dict(DEFAULT_LENGTH_BANDS))


@dataclass(frozen=True)
class SuiteParams:  # the great-expectations suite over the kept pairs
    min_pairs_per_lang: int = 1
    min_kept_share: float = 0.0  # per language: kept / (kept + rejected)
    min_chars: int = 1  # per side
    max_chars: int = 20000


@dataclass(frozen=True)
class FilterParams:
    failed_translation: RuleSwitch = field(default_factory=RuleSwitch)
    empty: SidedRule = field(default_factory=SidedRule)
    identical: RuleSwitch = field(default_factory=RuleSwitch)
    truncated: TruncatedRule = field(default_factory=TruncatedRule)
    wrong_language: WrongLanguageRule = field(default_factory=WrongLanguageRule)
    degenerate: DegenerateRule = field(default_factory=DegenerateRule)
    length_ratio: LengthRatioRule = field(default_factory=LengthRatioRule)
    echo: RuleSwitch = field(default_factory=RuleSwitch)  # a "translation" identical to its source
    duplicate: RuleSwitch = field(default_factory=RuleSwitch)
    suite: SuiteParams = field(default_factory=SuiteParams)


@dataclass(frozen=True)
class LoraParams:  # field names are peft.LoraConfig's
    r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.0
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")


@dataclass(frozen=True)
class TrainParams:  # field names are trl.DPOConfig's, except `mode` and `lora`
    mode: Literal["lora", "full"] = "lora"
    learning_rate: float = 5e-5
    num_train_epochs: float = 1.0
    per_device_train_batch_size: int = 4
    gradient_accumulation_steps: int = 2
    max_length: int = 512
    lr_scheduler_type: str = "linear"
    warmup_steps: int = 0
    logging_steps: int = 1
    gradient_checkpointing: bool = False
    lora: LoraParams = field(default_factory=LoraParams)
    save_steps: int = 10  # trainer checkpoints (for resuming) every this many optimizer steps
    precompute_ref_log_probs: bool = False  # score the pairs with the reference once; do not hold it in training
    # the accelerate configuration the train stage launches with: configs/accelerate/<launch>.yaml
    launch: Literal["cpu", "single_gpu", "multi_gpu", "deepspeed_zero3", "fsdp"] = "cpu"


@dataclass(frozen=True)
class MgsmParams:
    path: str = "data/builtin/mgsm"  # folder of mgsm_<lang>.tsv, or the hub id juletxara/mgsm
    languages: tuple[str, ...] = ("en", "es", "de", "fr", "ru")
    limit: int = 0  # questions per language; 0 = all


@dataclass(frozen=True)
class AlpacaParams:
    # X-AlpacaEval layout: a JSON list of {"id", "dataset", "instruction"} per language; "{lang}" is the code
    path: str = "data/builtin/xalpaca/{lang}.json"
    languages: tuple[str, ...] = ("en", "es", "de", "fr", "ru")
    limit: int = 0  # instructions per language; 0 = all
    max_new_tokens: int = 0  # answer length; 0 = eval.max_new_tokens (language fidelity needs only a few lines)
    # alpaca_eval layout ({"instruction", "output", "generator", "dataset"}), "{lang}" optional; or "previous":
    # the answers of the model each iteration starts from
    reference: str = "data/builtin/xalpaca/reference_{lang}.json"


@dataclass(frozen=True)
class JudgeParams:
    # local: the starting model (m0) through the generation backend, with lidr's judge prompt; openai: an
    # OpenAI-compatible endpoint that returns log-probabilities, from LIDR_JUDGE_BASE_URL, LIDR_JUDGE_API_KEY and
    # LIDR_JUDGE_MODEL, with alpaca_eval's weighted_alpaca_eval_gpt4_turbo prompt (pip install 'lidr[judge]')
    kind: Literal["local", "openai"] = "local"
    batch_size: int = 4  # local judge: prompts per forward pass
    limit: int = 0  # instructions judged per language (the first ones); 0 = all


@dataclass(frozen=True)
class EvalParams:
    max_new_tokens: int = 256
    mgsm: MgsmParams = field(default_factory=MgsmParams)
    alpaca: AlpacaParams = field(default_factory=AlpacaParams)
    judge: JudgeParams = field(default_factory=JudgeParams)


@dataclass(frozen=True)
class Params:
    seed: int
    beta: float
    nll_weight: float
    model: ModelParams
    languages: LanguageParams
    chains: dict[str, ChainParams]
    iterations: dict[str, Iteration]
    heldout: HeldoutParams = field(default_factory=HeldoutParams)
    generation: GenerationParams = field(default_factory=GenerationParams)
    filter: FilterParams = field(default_factory=FilterParams)
    train: TrainParams = field(default_factory=TrainParams)
    eval: EvalParams = field(default_factory=EvalParams)

    def iteration(self, key: str) -> Iteration:
        if key not in self.iterations:
            raise ParamsError(f"iterations: no iteration {key!r}; params.yaml defines {sorted(self.iterations)}")
        return self.iterations[key]

    def chain(self, key: str) -> ChainParams:
        """The prompts of the chain that iteration `key` belongs to."""
        return self.chains[self.iteration(key).chain]

    @property
    def training_sources(self) -> tuple[PromptSource, ...]:
        """Every chain's prompt sources (the held-out block must share nothing with any of them)."""
        return tuple(src for c in self.chains.values() for src in c.sources)


# ---------------------------------------------------------------------------------------------
# Generic, strict conversion of plain YAML data into the dataclasses above


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " or ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin in (tuple, list):
        return f"a list of {_type_name(typing.get_args(tp)[0])}"
    if origin is dict:
        return f"a mapping of {_type_name(typing.get_args(tp)[1])}"
    if dataclasses.is_dataclass(tp):
        return "a mapping with keys " + ", ".join(f.name for f in dataclasses.fields(tp))
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


def _convert(value: Any, tp: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    bad = ParamsError(f"{key}: expected {_type_name(tp)}, got {value!r}")
    if origin is Literal:
        if value not in typing.get_args(tp):
            raise bad
        return value
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(tp):
            try:
                return _convert(value, option, key)
            except ParamsError:
                continue
        raise bad
    if origin is tuple:
        if not isinstance(value, list):
            raise bad
        return tuple(_convert(v, typing.get_args(tp)[0], f"{key}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise bad
        return {str(k): _convert(v, typing.get_args(tp)[1], f"{key}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise bad
        return _build(tp, value, key)
    if tp is type(None):
        if value is not None:
            raise bad
        return None
    if tp is bool:
        if not isinstance(value, bool):
            raise bad
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads 5e-7 as a string
            try:
                return float(value)
            except ValueError:
                raise bad from None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise bad
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
        return value
    if tp is str:
        if not isinstance(value, str):
            raise bad
        return value
    raise TypeError(f"unsupported params type {tp!r} at {key}")


def _build(cls: type, data: dict, prefix: str = "") -> Any:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        where = f"{prefix}." if prefix else ""
        raise ParamsError(f"unknown key {where}{unknown[0]}; expected keys here: {', '.join(fields)}")
    kwargs = {}
    for name, f in fields.items():
        key = f"{prefix}.{name}" if prefix else name
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ParamsError(f"missing key {key}: expected {_type_name(hints[name])}")
            continue
        kwargs[name] = _convert(data[name], hints[name], key)
    return cls(**kwargs)


# ---------------------------------------------------------------------------------------------
# Checks that span several keys


def _check_ranges(p: Params) -> None:
    positive = {
        "generation.batch_size": p.generation.batch_size,
        "generation.chunk_size": p.generation.chunk_size,
        "generation.max_new_tokens": p.generation.max_new_tokens,
        "generation.translation_max_new_tokens": p.generation.translation_max_new_tokens,
        "generation.tensor_parallel_size": p.generation.tensor_parallel_size,
        "train.per_device_train_batch_size": p.train.per_device_train_batch_size,
        "train.gradient_accumulation_steps": p.train.gradient_accumulation_steps,
        "train.max_length": p.train.max_length,
        "train.lora.r": p.train.lora.r,
        "eval.max_new_tokens": p.eval.max_new_tokens,
        "eval.judge.batch_size": p.eval.judge.batch_size,
        "beta": p.beta,
        "train.learning_rate": p.train.learning_rate,
        "train.num_train_epochs": p.train.num_train_epochs,
    }
    for key, value in positive.items():
        if value <= 0:
            raise ParamsError(f"{key}: expected a value > 0, got {value}")
    for key, value in {
        "nll_weight": p.nll_weight,
        "generation.threads": p.generation.threads,
        "generation.draft_tokens": p.generation.draft_tokens,
        "eval.mgsm.limit": p.eval.mgsm.limit,
        "eval.alpaca.limit": p.eval.alpaca.limit,
        "eval.alpaca.max_new_tokens": p.eval.alpaca.max_new_tokens,
        "eval.judge.limit": p.eval.judge.limit,
        "train.warmup_steps": p.train.warmup_steps,
        "seed": p.seed,
    }.items():
        if value < 0:
            raise ParamsError(f"{key}: expected a value >= 0, got {value}")
    if p.generation.loop_span != 0 and p.generation.loop_span < 6:
        raise ParamsError(f"generation.loop_span: expected 0 (off) or a value >= 6, got {p.generation.loop_span}")
    if not 1.0 <= p.generation.repetition_penalty <= 2.0:
        raise ParamsError(f"generation.repetition_penalty: expected 1.0 to 2.0, got {p.generation.repetition_penalty}")
    if not 1.0 <= p.generation.translation_repetition_penalty <= 2.0:
        raise ParamsError(
            "generation.translation_repetition_penalty: expected 1.0 to 2.0, got "
            f"{p.generation.translation_repetition_penalty}"
        )
    if not 0.0 < p.generation.gpu_memory_utilization <= 1.0:
        raise ParamsError("generation.gpu_memory_utilization: expected a value in (0, 1]")
    if not 0.0 <= p.train.lora.lora_dropout < 1.0:
        raise ParamsError(f"train.lora.lora_dropout: expected 0 <= value < 1, got {p.train.lora.lora_dropout}")
    if not p.chains:
        raise ParamsError("chains: expected at least one chain, e.g. general: {sources: [...], parallel: null}")
    for name, chain in p.chains.items():
        if not CHAIN_NAME.fullmatch(name):
            raise ParamsError(
                f"chains.{name}: expected a name of lower-case letters, digits and _ (it starts each of its "
                "iterations' keys and stage names, e.g. general-m1)"
            )
        if not chain.sources:
            raise ParamsError(f"chains.{name}.sources: expected at least one prompt source")
        for i, src in enumerate(chain.sources):
            if src.n <= 0:
                raise ParamsError(f"chains.{name}.sources[{i}].n: expected a value > 0, got {src.n}")
    for i, src in enumerate(p.heldout.sources):
        if src.n <= 0:
            raise ParamsError(f"heldout.sources[{i}].n: expected a value > 0, got {src.n}")
    _check_alpaca(p.eval.alpaca)


def _check_alpaca(a: AlpacaParams) -> None:
    if "{lang}" not in a.path:
        raise ParamsError(
            f"eval.alpaca.path: expected a path with {{lang}} in it, e.g. data/xalpaca/{{lang}}.json, got {a.path!r}"
        )
    if not a.reference.strip():
        raise ParamsError("eval.alpaca.reference: expected 'previous' or a JSON file in the alpaca_eval layout")
    for key, value in (("eval.alpaca.path", a.path), ("eval.alpaca.reference", a.reference)):
        try:
            value.format(lang="xx")
        except (KeyError, IndexError, ValueError):
            raise ParamsError(f"{key}: the only placeholder allowed is {{lang}}, got {value!r}") from None
    if not a.languages:
        raise ParamsError("eval.alpaca.languages: expected at least one language")


def _check_train(p: Params) -> None:
    if p.train.save_steps <= 0:
        raise ParamsError(f"train.save_steps: expected a value > 0, got {p.train.save_steps}")
    if p.train.mode == "lora" and p.train.launch in ("deepspeed_zero3", "fsdp"):
        raise ParamsError(
            f"train.launch: {p.train.launch!r} shards the weights, which the LoRA merge at the end does not support; "
            "use mode: full, or launch: multi_gpu for LoRA (the frozen base fits one GPU per process)"
        )


def _check_languages(p: Params) -> None:
    try:
        language_name(p.languages.dominant, where="languages.dominant")
        for i, code in enumerate(p.languages.others):
            language_name(code, where=f"languages.others[{i}]")
        for i, code in enumerate(p.eval.mgsm.languages):
            language_name(code, where=f"eval.mgsm.languages[{i}]")
        for i, code in enumerate(p.eval.alpaca.languages):
            language_name(code, where=f"eval.alpaca.languages[{i}]")
    except UnknownLanguageError as e:
        raise ParamsError(str(e)) from None
    if not p.languages.others:
        raise ParamsError("languages.others: expected at least one non-dominant language")
    if p.languages.dominant in p.languages.others:
        raise ParamsError(f"languages.others: lists the dominant language {p.languages.dominant!r}")
    if len(set(p.languages.others)) != len(p.languages.others):
        raise ParamsError(f"languages.others: a language is listed twice: {list(p.languages.others)}")


def _check_filter(p: Params) -> None:
    f = p.filter
    for key, value in {
        "filter.wrong_language.min_chars": f.wrong_language.min_chars,
        "filter.length_ratio.min_chars": f.length_ratio.min_chars,
        "filter.suite.min_pairs_per_lang": f.suite.min_pairs_per_lang,
        "filter.suite.min_chars": f.suite.min_chars,
    }.items():
        if value < 0:
            raise ParamsError(f"{key}: expected a value >= 0, got {value}")
    d = f.degenerate
    for key in ("ngram", "min_words", "loop_words", "tail_chars"):
        if getattr(d, key) < 1:
            raise ParamsError(f"filter.degenerate.{key}: expected a value >= 1, got {getattr(d, key)}")
    for key in ("min_copies", "ngram_copies", "loop_copies", "tail_copies"):
        if getattr(d, key) < 2:
            raise ParamsError(
                f"filter.degenerate.{key}: expected a value >= 2 (one copy is no repeat), got {getattr(d, key)}"
            )
    for key in ("max_share", "source_ratio"):
        if not 0.0 < getattr(d, key) <= 1.0:
            raise ParamsError(
                f"filter.degenerate.{key}: expected a share above 0 and at most 1, got {getattr(d, key)}"
            )
    if not 0.0 <= f.wrong_language.min_confidence <= 1.0:
        raise ParamsError(
            f"filter.wrong_language.min_confidence: expected 0 to 1, got {f.wrong_language.min_confidence}"
        )
    if not 0.0 <= f.suite.min_kept_share <= 1.0:
        raise ParamsError(f"filter.suite.min_kept_share: expected 0 to 1, got {f.suite.min_kept_share}")
    if f.suite.max_chars < max(f.suite.min_chars, 1):
        raise ParamsError(
            f"filter.suite.max_chars: expected a value >= min_chars ({f.suite.min_chars}), got {f.suite.max_chars}"
        )
    try:
        for i, code in enumerate(f.wrong_language.confusers):
            language_name(code, where=f"filter.wrong_language.confusers[{i}]")
        for code in f.length_ratio.bands:
            language_name(code, where=f"filter.length_ratio.bands.{code}")
    except UnknownLanguageError as e:
        raise ParamsError(str(e)) from None
    for code, band in f.length_ratio.bands.items():
        if len(band) != 2 or not 0 < band[0] < band[1]:
            raise ParamsError(
                f"filter.length_ratio.bands.{code}: expected [low, high] with 0 < low < high, got {list(band)}"
            )
    if f.length_ratio.enabled:
        missing = [code for code in p.languages.others if code not in f.length_ratio.bands]
        if missing:
            raise ParamsError(
                f"filter.length_ratio.bands: no band for language {missing[0]!r} (listed in languages.others); "
                "add one as [low, high] characters per English character, or set filter.length_ratio.enabled: false"
            )


def _check_iterations(p: Params) -> None:
    if not p.iterations:
        raise ParamsError(
            "iterations: expected at least one iteration, e.g. general-m1: {chain: general, start: m0, round: 0}"
        )
    if BASE_MODEL_KEY in p.iterations:
        raise ParamsError(
            f"iterations.{BASE_MODEL_KEY}: {BASE_MODEL_KEY!r} names the starting model, not an iteration"
        )
    rounds: dict[tuple[str, int], str] = {}
    for key, it in p.iterations.items():
        if it.chain not in p.chains:
            raise ParamsError(
                f"iterations.{key}.chain: no chain {it.chain!r}; expected one of {sorted(p.chains)} (see chains)"
            )
        if not key.startswith(f"{it.chain}-") or key == f"{it.chain}-":
            raise ParamsError(
                f"iterations.{key}: the key must start with its chain's name, e.g. {it.chain}-m1 "
                "(stage names and folders say the chain)"
            )
        if it.start == key:
            raise ParamsError(f"iterations.{key}.start: an iteration cannot start from itself")
        if it.start != BASE_MODEL_KEY and it.start not in p.iterations:
            raise ParamsError(
                f"iterations.{key}.start: model {it.start!r} does not exist; expected {BASE_MODEL_KEY!r} "
                f"or one of {sorted(p.iterations)}"
            )
        if it.start != BASE_MODEL_KEY and p.iterations[it.start].chain != it.chain:
            raise ParamsError(
                f"iterations.{key}.start: {it.start!r} belongs to chain {p.iterations[it.start].chain!r}; "
                f"an iteration starts from m0 or from an iteration of its own chain ({it.chain!r})"
            )
        if it.round < 0:
            raise ParamsError(f"iterations.{key}.round: expected a value >= 0, got {it.round}")
        if (it.chain, it.round) in rounds:
            raise ParamsError(
                f"iterations.{key}.round: round {it.round} is also used by {rounds[it.chain, it.round]}; "
                "each iteration of a chain needs its own block of prompts"
            )
        rounds[it.chain, it.round] = key
    for key in p.iterations:  # no cycles
        seen, cur = set(), key
        while cur != BASE_MODEL_KEY:
            if cur in seen:
                raise ParamsError(f"iterations.{key}.start: the chain of starting models loops through {cur!r}")
            seen.add(cur)
            cur = p.iterations[cur].start


def _check_model(p: Params, root: Path) -> None:
    base = p.model.base
    if base == EMBEDDED_MODEL:
        return
    local = root / base
    looks_local = base.startswith((".", "/", "~")) or base.count("/") != 1 or local.exists()
    if looks_local and not (local / "config.json").exists():
        raise ParamsError(
            f"model.base: {base!r} is neither 'embedded', a hub id (owner/name), nor a model folder "
            f"with a config.json (looked in {local})"
        )


def parse_params(data: Any, *, root: Path = Path("."), source: str = "params.yaml") -> Params:
    if not isinstance(data, dict):
        raise ParamsError(f"{source}: expected a mapping of keys at the top level, got {type(data).__name__}")
    try:
        p = _build(Params, data)
        _check_ranges(p)
        _check_train(p)
        _check_languages(p)
        _check_iterations(p)
        _check_model(p, root)
        _check_filter(p)
    except ParamsError as e:
        raise ParamsError(f"{source}: {e}") from None
    return p


def load_params(path: str | Path = "params.yaml") -> Params:
    path = Path(path)
    if not path.exists():
        raise ParamsError(f"{path}: file not found (run from the project root, where dvc.yaml lives)")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ParamsError(f"{path}:{where} is not valid YAML: {getattr(e, 'problem', e)}") from None
    return parse_params(data, root=path.resolve().parent, source=str(path))


def iteration_order(p: Params) -> list[str]:
    """Iteration keys chain by chain (in the order of `chains`), each chain from its first model to its newest."""
    chains = list(p.chains)
    return sorted(p.iterations, key=lambda k: (chains.index(p.iterations[k].chain), p.iterations[k].round))


def chain_order(p: Params) -> dict[str, list[str]]:
    """{chain: its iteration keys, first to newest} for every chain that has iterations."""
    out: dict[str, list[str]] = {}
    for key in iteration_order(p):
        out.setdefault(p.iterations[key].chain, []).append(key)
    return out
