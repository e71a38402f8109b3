"""params.yaml -> one loader -> frozen, validated objects.

Every stage reads its settings through `load_params()`. Unknown keys, missing keys, wrong types,
out-of-range values and unknown language codes raise `ParamsError` naming the key and what is
expected, before any model is loaded. `python -m lidr.check` runs the same checks alone, and also
hands `train` to trl.DPOConfig and `train.lora` to peft.LoraConfig (lidr/train.py, `check_train`).

The defaults below are the only ones: params.yaml restates them (a test keeps the two equal), and
each field's range sits beside it (`positive`, `at_least`, `within`: lidr/ranges.py), each section's checks that
span several fields in its `check` method. The gate rules' sections under `filter` are their settings
classes, registered with the rules in lidr/gate.py.
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
from lidr.gate import RULES
from lidr.languages import UnknownLanguageError, language_name
from lidr.ranges import at_least, positive, share, within
from lidr.ranges import check_languages as _languages
from lidr.ranges import checked as _check_field

EMBEDDED_MODEL = "embedded"
BASE_MODEL_KEY = "m0"
CHAIN_NAME = re.compile(r"[a-z][a-z0-9_]*")
HELDOUT_CHAIN = "heldout"  # the chain that is the held-out block: its pairs measure every model, none trains on it


# ---------------------------------------------------------------------------------------------
# The sections of params.yaml


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

    def check(self, key: str) -> None:
        try:
            language_name(self.dominant, where=f"{key}.dominant")
        except UnknownLanguageError as e:
            raise ParamsError(str(e)) from None
        _languages(f"{key}.others", self.others)
        if not self.others:
            raise ParamsError(f"{key}.others: expected at least one non-dominant language")
        if self.dominant in self.others:
            raise ParamsError(f"{key}.others: lists the dominant language {self.dominant!r}")
        if len(set(self.others)) != len(self.others):
            raise ParamsError(f"{key}.others: a language is listed twice: {list(self.others)}")


@dataclass(frozen=True)
class Iteration:
    chain: str  # the chain it belongs to (a key of `chains`); its key is "<chain>-<name>", e.g. general-m1
    start: str  # the model this iteration trains from: "m0" or an earlier iteration of the same chain
    round: int = at_least(0)  # which disjoint block of the chain's prompts it samples


@dataclass(frozen=True)
class PromptSource:
    path: str  # local .json/.jsonl file, or an HF dataset id
    kind: Literal["general", "math"]
    n: int = positive()  # prompts taken from this source per iteration
    split: str = "train"
    config: str | None = None  # hub dataset configuration, e.g. "main" for openai/gsm8k
    field: str | None = None  # text field; default: "instruction", "question" or "prompt", whichever exists
    id_field: str | None = None  # default: "id" when present, else the row number


@dataclass(frozen=True)
class ChainParams:
    """One chain's prompts: each chain trains its own models from m0 (the authors ran two: general, math).

    The chain named `heldout` (HELDOUT_CHAIN) is the held-out block: m0's LIDR pairs on its prompts (all of each
    source's first n, in seeded order) measure every model, and no iteration trains on it.
    """

    sources: tuple[PromptSource, ...]
    parallel: str | None  # JSONL of {"id", "lang", "text"}: prompts already translated; null: self-translate
    # also build the dominant-language pairs (every x answer translated into the dominant language); false: the
    # x pairs only, at half the translations (the held-out measure in the decision rule uses x pairs only).
    # No default: dvc.yaml's pair-making stages list chains.<chain>.dominant_pairs among their params.
    dominant_pairs: bool

    def check(self, key: str) -> None:
        name = key.rsplit(".", 1)[-1]
        if not CHAIN_NAME.fullmatch(name):
            raise ParamsError(
                f"{key}: expected a name of lower-case letters, digits and _ (it starts each of its "
                "iterations' keys and stage names, e.g. general-m1)"
            )
        if not self.sources:
            raise ParamsError(f"{key}.sources: expected at least one prompt source")


@dataclass(frozen=True)
class GenerationParams:
    backend: Literal["transformers", "vllm"] = "transformers"
    batch_size: int = positive(64)  # rows decoded together (transformers); more in a chunk wait for a free place
    chunk_size: int = positive(64)  # prompts handed to the backend at once and journaled together
    max_new_tokens: int = positive(96)
    translation_max_new_tokens: int = positive(256)
    repetition_penalty: float = within(1.0, 2.0, 1.1)
    translation_repetition_penalty: float = within(1.0, 2.0, 1.1)  # the authors: 1.0 (8B model)
    threads: int = at_least(0, 0)  # torch threads on CPU; 0 keeps torch's default
    gpu_memory_utilization: float = share(0.85)  # vLLM only
    tensor_parallel_size: int = positive(1)  # vLLM only
    # end a sequence whose last loop_span tokens repeat a short block; 0: off
    loop_span: int = _check_field(
        lambda v: None if v == 0 or v >= 6 else f"expected 0 (off) or a value >= 6, got {v}", 48
    )
    draft_tokens: int = at_least(0, 4)  # prompt-lookup guesses checked per row and step while few rows run; 0: off
    prefill_tokens: int = at_least(0, 4096)  # prompts prefilled together within this many padded tokens; 0: all


@dataclass(frozen=True)
class SuiteParams:  # the great-expectations suite over the kept pairs
    min_pairs_per_lang: int = at_least(0, 0)
    min_kept_share: float = within(0, 1, 0.0)  # per language: kept / (kept + rejected)
    min_chars: int = at_least(0, 1)  # per side
    max_chars: int = 20000

    def check(self, key: str) -> None:
        if self.max_chars < max(self.min_chars, 1):
            raise ParamsError(
                f"{key}.max_chars: expected a value >= min_chars ({self.min_chars}), got {self.max_chars}"
            )


# `filter`: one section per gate rule, named, typed and defaulted by the rule's registered settings (lidr/gate.py,
# RULES, in the order the gate applies them), then the suite.
FilterParams = dataclasses.make_dataclass(
    "FilterParams",
    [
        *((rule.name, rule.settings, field(default_factory=rule.settings)) for rule in RULES),
        ("suite", SuiteParams, field(default_factory=SuiteParams)),
    ],
    frozen=True,
)
FilterParams.__module__ = __name__


LAUNCHES = Literal["cpu", "single_gpu", "multi_gpu", "deepspeed_zero3", "fsdp"]


@dataclass(frozen=True)
class TrainParams:
    """`train`: lidr's own keys (`mode`, `launch`, `lora`); every other key is a trl.DPOConfig field, kept in `dpo`
    as it is and handed to DPOConfig, and `lora`'s keys are peft.LoraConfig's, handed to LoraConfig as they are
    (lidr/train.py checks both against the libraries: `python -m lidr.check` and the train stage)."""

    mode: Literal["lora", "full"] = "lora"
    # the accelerate configuration the train stage launches with: configs/accelerate/<launch>.yaml
    launch: LAUNCHES = "cpu"
    lora: dict[str, Any] = field(default_factory=dict)  # peft.LoraConfig's fields
    dpo: dict[str, Any] = field(default_factory=dict)  # trl.DPOConfig's fields: every other key of `train`

    REST = "dpo"  # the field that takes the keys not named here

    def replace(self, **changes: Any) -> TrainParams:
        """A copy with `changes`, given as in params.yaml: mode, launch and lora as they are, any other key into
        the DPOConfig fields."""
        own = {k: v for k, v in changes.items() if k in ("mode", "launch", "lora")}
        dpo = {k: v for k, v in changes.items() if k not in own}
        return dataclasses.replace(self, **own, dpo={**self.dpo, **dpo})

    def check(self, key: str) -> None:
        if self.mode == "lora" and self.launch in ("deepspeed_zero3", "fsdp"):
            raise ParamsError(
                f"{key}.launch: {self.launch!r} shards the weights, which the LoRA merge at the end does not support; "
                "use mode: full, or launch: multi_gpu for LoRA (the frozen base fits one GPU per process)"
            )


@dataclass(frozen=True)
class MgsmParams:
    enabled: bool = False  # off in the CPU default: the embedded 135M model scores 0% in every language
    path: str = "data/builtin/mgsm"  # folder of mgsm_<lang>.tsv, or the hub id juletxara/mgsm
    languages: tuple[str, ...] = ("en", "es", "de", "fr", "ru")
    limit: int = at_least(0, 0)  # questions per language; 0 = all

    def check(self, key: str) -> None:
        _languages(f"{key}.languages", self.languages)


@dataclass(frozen=True)
class AlpacaParams:
    # X-AlpacaEval layout: a JSON list of {"id", "dataset", "instruction"} per language; "{lang}" is the code
    path: str = "data/xalpacaeval/{lang}.json"
    languages: tuple[str, ...] = ("es", "de", "fr", "ru")
    # instructions per language: the first `limit` ids of one seeded order (`seed`), the same ids in every
    # language (the files are parallel); 0 = all, in file order
    limit: int = at_least(0, 200)
    max_new_tokens: int = at_least(0, 32)  # answer length; 0 = eval.max_new_tokens (fidelity needs a sentence)
    # alpaca_eval layout ({"instruction", "output", "generator", "dataset"}), "{lang}" optional; or "previous":
    # the answers of the model each iteration starts from
    reference: str = "data/xalpacaeval/reference_{lang}.json"

    def check(self, key: str) -> None:
        _languages(f"{key}.languages", self.languages)
        if "{lang}" not in self.path:
            raise ParamsError(
                f"{key}.path: expected a path with {{lang}} in it, e.g. data/xalpaca/{{lang}}.json, got {self.path!r}"
            )
        if not self.reference.strip():
            raise ParamsError(f"{key}.reference: expected 'previous' or a JSON file in the alpaca_eval layout")
        for name, value in (("path", self.path), ("reference", self.reference)):
            try:
                value.format(lang="xx")
            except (KeyError, IndexError, ValueError):
                raise ParamsError(f"{key}.{name}: the only placeholder allowed is {{lang}}, got {value!r}") from None
        if not self.languages:
            raise ParamsError(f"{key}.languages: expected at least one language")


@dataclass(frozen=True)
class JudgeParams:
    # local: the starting model (m0) through the generation backend, with lidr's judge prompt; openai: an
    # OpenAI-compatible endpoint that returns log-probabilities, from LIDR_JUDGE_BASE_URL, LIDR_JUDGE_API_KEY and
    # LIDR_JUDGE_MODEL, with alpaca_eval's weighted_alpaca_eval_gpt4_turbo prompt (pip install 'lidr[judge]')
    enabled: bool = False  # off in the CPU default: the embedded model judging itself is at chance
    kind: Literal["local", "openai"] = "local"
    batch_size: int = positive(4)  # local judge: prompts per forward pass
    limit: int = at_least(0, 3)  # instructions judged per language (the first ones); 0 = all


@dataclass(frozen=True)
class LikelihoodParams:
    """Reference likelihood: the mean per-token log-likelihood of reference answers given their instruction."""

    # alpaca_eval layout with "id" ({"id", "instruction", "output"}), "{lang}" in it: the references, whose
    # instructions are asked through the answering prompt of eval.alpaca
    reference: str = "data/xalpacaeval/reference_{lang}.json"
    languages: tuple[str, ...] = ("en", "es", "de", "fr", "ru")  # the dominant language is the contrast's base
    limit: int = at_least(0, 100)  # items: the first `limit` ids of the seeded order of eval.alpaca; 0 = all
    max_tokens: int = positive(32)  # the first N tokens of each reference answer are scored
    batch_size: int = positive(8)  # sequences per forward pass

    def check(self, key: str) -> None:
        _languages(f"{key}.languages", self.languages)
        if "{lang}" not in self.reference:
            raise ParamsError(
                f"{key}.reference: expected a path with {{lang}} in it, e.g. "
                f"data/xalpacaeval/reference_{{lang}}.json, got {self.reference!r}"
            )


@dataclass(frozen=True)
class EvalParams:
    # the models evaluated: m0 and the iterations listed (dvc.yaml's eval, likelihood and judge stages: one per entry)
    models: tuple[str, ...]
    # the iterations evaluated, each -> the model it meets head to head: the one evaluated before it on its chain
    # (dvc.yaml's compare, preference, card and head_to_head stages run once per entry); `_check_evaluated` says which
    iterations: dict[str, str]
    max_new_tokens: int = positive(128)  # MGSM answers
    mgsm: MgsmParams = field(default_factory=MgsmParams)
    alpaca: AlpacaParams = field(default_factory=AlpacaParams)
    judge: JudgeParams = field(default_factory=JudgeParams)
    likelihood: LikelihoodParams = field(default_factory=LikelihoodParams)


@dataclass(frozen=True)
class Params:
    seed: int = at_least(0)
    beta: float = positive()
    nll_weight: float = at_least(0)
    chains: dict[str, ChainParams]
    iterations: dict[str, Iteration]
    eval: EvalParams
    model: ModelParams = field(default_factory=ModelParams)
    languages: LanguageParams = field(default_factory=LanguageParams)
    generation: GenerationParams = field(default_factory=GenerationParams)
    filter: FilterParams = field(default_factory=FilterParams)
    train: TrainParams = field(default_factory=TrainParams)

    def iteration(self, key: str) -> Iteration:
        if key not in self.iterations:
            raise ParamsError(f"iterations: no iteration {key!r}; params.yaml defines {sorted(self.iterations)}")
        return self.iterations[key]

    def chain(self, key: str) -> ChainParams:
        """The prompts of the chain that iteration `key` belongs to."""
        return self.chains[self.iteration(key).chain]

    def chain_named(self, name: str) -> ChainParams:
        """chains.<name>, with an error that names the chains there are."""
        if name not in self.chains:
            raise ParamsError(f"chains: no chain {name!r}; params.yaml defines {sorted(self.chains)}")
        return self.chains[name]

    @property
    def heldout(self) -> ChainParams:
        """The held-out block (chains.heldout)."""
        return self.chains[HELDOUT_CHAIN]

    @property
    def training_sources(self) -> tuple[PromptSource, ...]:
        """Every training chain's prompt sources (the held-out block must share nothing with any of them)."""
        return tuple(src for name, c in self.chains.items() if name != HELDOUT_CHAIN for src in c.sources)

    def check(self, key: str = "") -> None:
        if HELDOUT_CHAIN not in self.chains:
            raise ParamsError(
                f"chains.{HELDOUT_CHAIN}: missing; the held-out block's prompts, which no iteration trains on, e.g. "
                f"{HELDOUT_CHAIN}: {{sources: [...], parallel: null, dominant_pairs: false}}"
            )
        if len(self.chains) == 1:
            raise ParamsError(
                "chains: expected a chain to train on, "
                "e.g. general: {sources: [...], parallel: null, dominant_pairs: true}"
            )
        self._check_iterations()
        self._check_evaluated()
        ll = self.eval.likelihood
        if self.languages.dominant not in ll.languages:
            raise ParamsError(
                f"eval.likelihood.languages: expected the dominant language {self.languages.dominant!r} among them "
                "(each language's change is contrasted with the dominant language's on the same item)"
            )
        f = self.filter.length_ratio
        if f.enabled:
            missing = [code for code in self.languages.others if code not in f.bands]
            if missing:
                raise ParamsError(
                    f"filter.length_ratio.bands: no band for language {missing[0]!r} (listed in languages.others); "
                    "add one as [low, high] characters per English character, or set filter.length_ratio.enabled: "
                    "false"
                )

    def _check_evaluated(self) -> None:
        models = [BASE_MODEL_KEY, *self.iterations]
        listed = self.eval.models
        for name in listed:
            if name not in models:
                raise ParamsError(f"eval.models: {name!r} is neither {BASE_MODEL_KEY!r} nor an iteration")
            if listed.count(name) > 1:
                raise ParamsError(f"eval.models: {name!r} is listed twice")
        if BASE_MODEL_KEY not in listed:
            raise ParamsError(
                f"eval.models: {BASE_MODEL_KEY!r} is missing; every evaluated iteration is compared with it, e.g. "
                f"[{', '.join([BASE_MODEL_KEY, *iteration_order(self)[-1:]])}]"
            )
        expected = {key: self.evaluated_before(key) for key in iteration_order(self) if key in listed}
        got = self.eval.iterations
        for key in got:
            if key not in expected:
                raise ParamsError(
                    f"eval.iterations.{key}: {key!r} is not an evaluated iteration (eval.models: "
                    f"[{', '.join(listed)}]); list it in eval.models too, or remove it here"
                )
        for key, before in expected.items():
            if key not in got:
                raise ParamsError(
                    f"eval.iterations: {key!r} is missing; every iteration in eval.models is listed here with the "
                    f"model evaluated before it on its chain: {key}: {before}"
                )
            if got[key] != before:
                raise ParamsError(
                    f"eval.iterations.{key}: expected {before!r}, the model evaluated before it on its chain (its "
                    f"head-to-head opponent), got {got[key]!r}"
                )

    def evaluated_before(self, key: str) -> str:
        """The model evaluated before iteration `key` on its chain: its nearest evaluated starting model, else m0."""
        start = self.iterations[key].start
        while start != BASE_MODEL_KEY and start not in self.eval.models:
            start = self.iterations[start].start
        return start

    def _check_iterations(self) -> None:
        its = self.iterations
        if not its:
            raise ParamsError(
                "iterations: expected at least one iteration, e.g. general-m1: {chain: general, start: m0, round: 0}"
            )
        if BASE_MODEL_KEY in its:
            raise ParamsError(
                f"iterations.{BASE_MODEL_KEY}: {BASE_MODEL_KEY!r} names the starting model, not an iteration"
            )
        rounds: dict[tuple[str, int], str] = {}
        for key, it in its.items():
            if it.chain == HELDOUT_CHAIN:
                raise ParamsError(
                    f"iterations.{key}.chain: {HELDOUT_CHAIN!r} is the held-out block, which no iteration trains on"
                )
            if it.chain not in self.chains:
                raise ParamsError(
                    f"iterations.{key}.chain: no chain {it.chain!r}; expected one of {sorted(self.chains)} "
                    "(see chains)"
                )
            if not key.startswith(f"{it.chain}-") or key == f"{it.chain}-":
                raise ParamsError(
                    f"iterations.{key}: the key must start with its chain's name, e.g. {it.chain}-m1 "
                    "(stage names and folders say the chain)"
                )
            if it.start == key:
                raise ParamsError(f"iterations.{key}.start: an iteration cannot start from itself")
            if it.start != BASE_MODEL_KEY and it.start not in its:
                raise ParamsError(
                    f"iterations.{key}.start: model {it.start!r} does not exist; expected {BASE_MODEL_KEY!r} "
                    f"or one of {sorted(its)}"
                )
            if it.start != BASE_MODEL_KEY and its[it.start].chain != it.chain:
                raise ParamsError(
                    f"iterations.{key}.start: {it.start!r} belongs to chain {its[it.start].chain!r}; "
                    f"an iteration starts from m0 or from an iteration of its own chain ({it.chain!r})"
                )
            if (it.chain, it.round) in rounds:
                raise ParamsError(
                    f"iterations.{key}.round: round {it.round} is also used by {rounds[it.chain, it.round]}; "
                    "each iteration of a chain needs its own block of prompts"
                )
            rounds[it.chain, it.round] = key
        for key in its:  # no cycles
            seen, cur = set(), key
            while cur != BASE_MODEL_KEY:
                if cur in seen:
                    raise ParamsError(f"iterations.{key}.start: the chain of starting models loops through {cur!r}")
                seen.add(cur)
                cur = its[cur].start


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
    if tp is Any:
        return "any value"
    return getattr(tp, "__name__", str(tp))


def _convert(value: Any, tp: Any, key: str) -> Any:
    if tp is Any:  # handed to a library as it is (train's DPOConfig and LoraConfig fields)
        return value
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
    """`cls` from `data`: each key converted to its field's type and checked against its range, then the section's
    own `check`. A class with `REST` gathers the keys it does not name into that field (`train` -> `dpo`)."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    rest = getattr(cls, "REST", None)
    named = {k: v for k, v in data.items() if k in fields and k != rest}
    unknown = sorted(set(data) - set(named))
    where = f"{prefix}." if prefix else ""
    if unknown and rest is None:
        raise ParamsError(f"unknown key {where}{unknown[0]}; expected keys here: {', '.join(fields)}")
    kwargs = {}
    for name, f in fields.items():
        key = f"{where}{name}"
        if name == rest:
            kwargs[name] = {k: data[k] for k in unknown}
            continue
        if name not in named:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ParamsError(f"missing key {key}: expected {_type_name(hints[name])}")
            continue
        value = _convert(named[name], hints[name], key)
        check = f.metadata.get("check")
        if check is not None and (problem := check(value)):
            raise ParamsError(f"{key}: {problem}")
        kwargs[name] = value
    obj = cls(**kwargs)
    if hasattr(obj, "check"):
        obj.check(prefix)
    return obj


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
    if "heldout" in data:
        raise ParamsError(
            f"{source}: the top-level key heldout is now chains.{HELDOUT_CHAIN} (the held-out block is the chain "
            "that no iteration trains on): move it under chains, with the same sources, parallel and dominant_pairs"
        )
    try:
        p = _build(Params, data)
        _check_model(p, root)
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


def evaluated_order(p: Params) -> list[str]:
    """The evaluated iterations (eval.models but m0), in `iteration_order`."""
    return [key for key in iteration_order(p) if key in p.eval.models]
