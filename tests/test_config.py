import copy
import re

import pytest
import yaml

from lidr.config import ParamsError, iteration_order, load_params, parse_params
from tests.conftest import ROOT

BASE = yaml.safe_load((ROOT / "params.yaml").read_text())


def parse(**changes):
    data = copy.deepcopy(BASE)
    for dotted, value in changes.items():
        *path, last = dotted.split("__")
        node = data
        for key in path:
            node = node[key]
        if value is KeyError:
            del node[last]
        else:
            node[last] = value
    return parse_params(data, root=ROOT)


def test_default_params_are_valid():
    p = load_params(ROOT / "params.yaml")
    assert p.languages.all == ("en", "es", "de", "fr", "ru")
    assert iteration_order(p) == ["general-m1", "general-m2"]
    assert p.iterations["general-m2"].start == "general-m1"
    assert set(p.chains) == {"general", "math", "heldout"} and p.chain("general-m1") is p.chains["general"]
    assert p.heldout is p.chains["heldout"] and not p.heldout.dominant_pairs and p.chains["general"].dominant_pairs
    assert p.heldout.sources[0].path not in {s.path for s in p.training_sources}


def test_the_heldout_block_is_a_chain_that_no_iteration_trains_on():
    with pytest.raises(ParamsError, match=r"iterations.heldout-m1.chain: 'heldout' is the held-out block"):
        parse(iterations={"heldout-m1": {"chain": "heldout", "start": "m0", "round": 0}})
    with pytest.raises(ParamsError, match=r"chains.heldout: missing"):
        parse(chains__heldout=KeyError)
    with pytest.raises(ParamsError, match=r"the top-level key heldout is now chains.heldout"):
        parse(heldout={"sources": []})
    with pytest.raises(ParamsError, match=r"missing key chains.general.dominant_pairs"):
        parse(chains__general__dominant_pairs=KeyError)


def test_iterations_go_chain_by_chain():
    from lidr.config import chain_order

    p = parse(
        iterations={
            "math-m1": {"chain": "math", "start": "m0", "round": 0},
            "general-m2": {"chain": "general", "start": "general-m1", "round": 1},
            "general-m1": {"chain": "general", "start": "m0", "round": 0},
            "math-m2": {"chain": "math", "start": "math-m1", "round": 1},
        },
        eval__models=["m0", "math-m1", "math-m2", "general-m1", "general-m2"],
        eval__iterations={"general-m1": "m0", "general-m2": "general-m1", "math-m1": "m0", "math-m2": "math-m1"},
    )
    assert iteration_order(p) == ["general-m1", "general-m2", "math-m1", "math-m2"]
    assert chain_order(p) == {"general": ["general-m1", "general-m2"], "math": ["math-m1", "math-m2"]}
    # the same round in two chains: each chain has its own prompts
    assert p.iterations["math-m1"].round == p.iterations["general-m1"].round == 0


def it(chain="general", start="m0", round=0):
    return {"chain": chain, "start": start, "round": round}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"betta": 0.1}, "unknown key betta"),
        ({"beta": "high"}, "beta: expected float"),
        ({"beta": 0}, "beta: expected a value > 0"),
        ({"beta": KeyError}, "missing key beta"),
        ({"languages__others": ["es", "xx"]}, "languages.others[1]: unknown language code 'xx'"),
        ({"languages__dominant": "klingon"}, "languages.dominant: unknown language code"),
        ({"iterations": {"general-m1": it(start="m9")}}, "iterations.general-m1.start: model 'm9' does not exist"),
        ({"iterations": {"general-m1": it(), "general-m2": it(start="general-m1")}}, "round 0 is also"),
        ({"iterations": {"general-m1": it(chain="code")}}, "iterations.general-m1.chain: no chain 'code'"),
        ({"iterations": {"m1": it()}}, "iterations.m1: the key must start with its chain's name"),
        ({"iterations": {"general-m1": {"start": "m0", "round": 0}}}, "missing key iterations.general-m1.chain"),
        (
            {"iterations": {"math-m1": it(chain="math"), "general-m1": it(start="math-m1")}},
            "iterations.general-m1.start: 'math-m1' belongs to chain 'math'",
        ),
        ({"generation__batch_size": 0}, "generation.batch_size: expected a value > 0"),
        ({"generation__backend": "llama.cpp"}, "generation.backend: expected 'transformers' or 'vllm'"),
        ({"train__mode": "qlora"}, "train.mode"),
        ({"model__base": "./no/such/model"}, "model.base"),
        ({"chains__general__sources": []}, "chains.general.sources: expected at least one"),
        ({"chains__general__parallel": KeyError}, "missing key chains.general.parallel"),
        ({"chains": {"Gen-1": BASE["chains"]["general"]}}, "chains.Gen-1: expected a name of lower-case"),
        ({"prompts": {"sources": []}}, "unknown key prompts"),
    ],
)
def test_bad_params_name_the_key(changes, message):
    with pytest.raises(ParamsError, match=message.replace("[", r"\[").replace("]", r"\]").replace("(", r"\(")):
        parse(**changes)


def test_yaml_floats_written_as_strings_are_accepted():
    assert parse(beta="5e-1").beta == 0.5


def test_malformed_yaml_names_file_and_line(tmp_path):
    bad = tmp_path / "params.yaml"
    bad.write_text("seed: 0\nbeta: [0.1\nmodel: {}\n")
    with pytest.raises(ParamsError, match=r"params.yaml: line \d+, column \d+ is not valid YAML"):
        load_params(bad)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"eval__alpaca__path": "data/xalpaca.json"}, "eval.alpaca.path: expected a path with {lang}"),
        ({"eval__alpaca__reference": "refs/{language}.json"}, "eval.alpaca.reference: the only placeholder"),
        ({"eval__alpaca__reference": " "}, "eval.alpaca.reference: expected 'previous'"),
        ({"eval__alpaca__languages": ["en", "xx"]}, "eval.alpaca.languages"),
        ({"eval__alpaca__languages": []}, "eval.alpaca.languages: expected at least one"),
        ({"eval__alpaca__limit": -1}, "eval.alpaca.limit: expected a value >= 0"),
        ({"eval__judge__kind": "gpt4"}, "eval.judge.kind: expected 'local' or 'openai'"),
        ({"eval__judge__batch_size": 0}, "eval.judge.batch_size: expected a value > 0"),
        ({"eval__judge__url": "http://x"}, "unknown key eval.judge.url"),
        ({"eval__models": KeyError}, "missing key eval.models"),
        (
            {"eval__models": ["general-m1", "general-m2"]},
            "eval.models: 'm0' is missing; every evaluated iteration is compared with it, e.g. [m0, general-m2]",
        ),
        (
            {"eval__models": ["m0", "general-m1", "general-m2", "m3"]},
            "eval.models: 'm3' is neither 'm0' nor an iteration",
        ),
        ({"eval__models": ["m0", "m0", "general-m1", "general-m2"]}, "eval.models: 'm0' is listed twice"),
        ({"eval__iterations": KeyError}, "missing key eval.iterations"),
        (
            {"eval__iterations": {}},
            "eval.iterations: 'general-m2' is missing; every iteration in eval.models is listed here with the model "
            "evaluated before it on its chain: general-m2: m0",
        ),
        (
            {"eval__iterations": {"general-m2": "general-m1"}},
            "eval.iterations.general-m2: expected 'm0', the model evaluated before it on its chain",
        ),
        (
            {"eval__iterations": {"general-m1": "m0", "general-m2": "m0"}},
            "eval.iterations.general-m1: 'general-m1' is not an evaluated iteration (eval.models: [m0, general-m2])",
        ),
        (
            {"eval__models": ["m0", "general-m1", "general-m2"]},
            "eval.iterations: 'general-m1' is missing; every iteration in eval.models is listed here with the model "
            "evaluated before it on its chain: general-m1: m0",
        ),
        (
            {
                "eval__models": ["m0", "general-m1", "general-m2"],
                "eval__iterations": {"general-m1": "m0", "general-m2": "m0"},
            },
            "eval.iterations.general-m2: expected 'general-m1', the model evaluated before it on its chain",
        ),
    ],
)
def test_eval_alpaca_and_judge_keys_are_checked(changes, message):
    with pytest.raises(ParamsError, match=re.escape(message)):
        parse(**changes)


def test_eval_alpaca_reference_may_be_previous():
    assert parse(eval__alpaca__reference="previous").eval.alpaca.reference == "previous"


def test_params_yaml_restates_the_code_defaults():
    """One source of defaults: every key of params.yaml that lidr/config.py gives a default has that value there
    (train's DPOConfig and LoraConfig keys have the libraries' defaults, not lidr's)."""
    import dataclasses

    from lidr.config import TrainParams

    differ = []

    def walk(obj, key):
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if dataclasses.is_dataclass(value):
                walk(value, f"{key}{f.name}.")
            elif isinstance(obj, TrainParams) and f.name in ("dpo", "lora"):
                continue
            elif f.default is not dataclasses.MISSING and value != f.default:
                differ.append(f"{key}{f.name}: params.yaml {value!r}, lidr/config.py {f.default!r}")
            elif f.default_factory is not dataclasses.MISSING and value != f.default_factory():
                differ.append(f"{key}{f.name}: params.yaml {value!r}, lidr/config.py {f.default_factory()!r}")

    walk(load_params(ROOT / "params.yaml"), "")
    assert differ == []


def test_train_keys_go_to_the_libraries_as_they_are():
    from lidr.train import dpo_config, lora_config

    p = parse(train__max_grad_norm=0.5, train__weight_decay=0.01, train__learning_rate="5e-7")
    assert p.train.dpo["weight_decay"] == 0.01 and p.train.mode == "lora"  # a DPOConfig field lidr never names
    config = dpo_config(p, "/tmp/lidr-test-dpo", use_cpu=True)
    assert (config.weight_decay, config.learning_rate, config.max_grad_norm) == (0.01, 5e-7, 0.5)
    assert (config.beta, config.seed) == (p.beta, p.seed)
    lora = lora_config(parse(train__lora={**BASE["train"]["lora"], "use_rslora": True}))
    assert lora.use_rslora is True and lora.r == BASE["train"]["lora"]["r"] and lora.task_type == "CAUSAL_LM"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"train__learning_rte": 1e-5}, "unknown key train.learning_rte: not a field of trl.DPOConfig; did you mean"),
        ({"train__seed": 3}, "train.seed: set by lidr (the top-level seed)"),
        ({"train__learning_rate": "fast"}, "train.learning_rate: expected float, got 'fast'"),
        ({"train__lr_scheduler_type": "bogus"}, "train.lr_scheduler_type: DPOConfig refused it"),
        ({"train__lora__rr": 16}, "unknown key train.lora.rr: not a field of peft.LoraConfig; did you mean r?"),
    ],
)
def test_the_libraries_refusals_name_the_key(changes, message, tmp_path, capsys):
    import yaml as _yaml

    from lidr.check import main

    data = copy.deepcopy(BASE)
    for dotted, value in changes.items():
        *path, last = dotted.split("__")
        node = data
        for k in path:
            node = node[k]
        node[last] = value
    (tmp_path / "params.yaml").write_text(_yaml.safe_dump(data))
    assert main(["--params", str(tmp_path / "params.yaml")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {tmp_path / 'params.yaml'}: ") and message in err, err
    assert len(err.strip().splitlines()) == 1  # one line


def test_library_functions_take_the_sections_they_read():
    """Loaders and backends receive their section (ModelParams, GenerationParams, ...), not the whole params:
    only the loader itself, the check command and training (which reads train, beta, nll_weight, seed, model)
    take a Params."""
    import ast

    allowed = {"config.py", "check.py", "stage.py", "train.py"}
    takers = []
    for path in sorted((ROOT / "lidr").rglob("*.py")):
        if path.name in allowed:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                for arg in node.args.args + node.args.kwonlyargs:
                    if arg.annotation is not None and ast.unparse(arg.annotation) == "Params":
                        takers.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}")
    assert takers == []
