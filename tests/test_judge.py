"""The judge: log-probabilities -> preference, both-orders averaging, alpaca_eval's win rate and standard error,
alpaca_eval's annotator prompt, the HTTP judge, the local judge."""

import http.server
import json
import math
import random
import sys
import threading

import pytest

from lidr.errors import JudgeError
from lidr.judge.clients import LocalJudge, OpenAIJudge, parse_openai_logprobs
from lidr.judge.compare import judge_pairs
from lidr.judge.prompts import LIDR_PROMPT, MULTILINGUAL_RULE, TOKENS, alpaca_eval_prompt, judge_messages
from lidr.judge.winrate import both_orders, head_to_head, preference, win_rates

# The layout of alpaca-eval 0.6.6: the annotator's configs.yaml names a prompt file of another folder.
FAKE_CONFIG = """weighted_alpaca_eval_gpt4_turbo:
  prompt_template: "alpaca_eval_clf_gpt4_turbo/alpaca_eval_clf.txt"
  fn_completions: "openai_completions"
  completions_kwargs:
    model_name: "gpt-4-1106-preview"
    max_tokens: 1
    temperature: 1
    logprobs: true
    top_logprobs: 5
  fn_completion_parser: "logprob_parser"
  completion_parser_kwargs:
    numerator_token: "m"
    denominator_tokens: ["m", "M"]
    is_binarize: false
  batch_size: 1
"""
FAKE_PROMPT = """<|im_start|>system
You are a stand-in judge.
<|im_end|>
<|im_start|>user
## Instruction

{
    "instruction": \"\"\"{instruction}\"\"\",
}

## Model Outputs

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

Evaluate the models. Answer m or M.

## Best Model Identifier
<|im_end|>
"""


def write_fake_alpaca_eval(root, config=FAKE_CONFIG, prompt=FAKE_PROMPT, version="0.6.6"):
    pkg = root / "alpaca_eval"
    (pkg / "evaluators_configs" / "weighted_alpaca_eval_gpt4_turbo").mkdir(parents=True)
    (pkg / "evaluators_configs" / "alpaca_eval_clf_gpt4_turbo").mkdir(parents=True)
    (pkg / "__init__.py").write_text("raise ImportError('lidr must not import alpaca_eval')\n")
    (pkg / "evaluators_configs" / "weighted_alpaca_eval_gpt4_turbo" / "configs.yaml").write_text(config)
    (pkg / "evaluators_configs" / "alpaca_eval_clf_gpt4_turbo" / "alpaca_eval_clf.txt").write_text(prompt)
    dist = root / f"alpaca_eval-{version}.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: alpaca_eval\nVersion: {version}\n")
    return pkg


@pytest.fixture
def fake_alpaca_eval(tmp_path, monkeypatch):
    """A stand-in alpaca-eval package on sys.path, in the layout of the real one."""
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.delitem(sys.modules, "alpaca_eval", raising=False)
    monkeypatch.syspath_prepend(str(root))
    return root


@pytest.fixture
def no_alpaca_eval(monkeypatch):
    monkeypatch.setitem(sys.modules, "alpaca_eval", None)  # find_spec then answers None: not installed


def test_preference_is_the_renormalised_mass_on_the_named_token():
    lp = {"m": math.log(0.6), "M": math.log(0.2)}  # the other 0.2 went to other tokens
    assert preference(lp, "m") == pytest.approx(0.75)
    assert preference(lp, "M") == pytest.approx(0.25)
    assert preference({"m": -0.01}, "M") == 0.0  # "M" outside the returned top log-probabilities
    assert preference({"M": -3.0}, "M") == 1.0
    assert preference({}, "m") is None


@pytest.mark.parametrize(
    "first, second, pref, verdict, used, disagree",
    [
        (0.8, 0.6, 0.7, "win", 2, False),
        (0.2, 0.4, 0.3, "lose", 2, False),
        # a judge that always prefers the first output: the mean cancels it; a draw, and the orders disagree
        (0.9, 0.1, 0.5, "tie", 2, True),
        (0.9, 0.3, 0.6, "win", 2, True),  # the old "tie" (orders disagree) is now a win that disagrees
        (0.5, 0.7, 0.6, "win", 2, True),
        (0.7, None, 0.7, "win", 1, False),  # one order failed: the other is kept
        (None, 0.3, 0.3, "lose", 1, False),
        (None, 0.5, 0.5, "tie", 1, False),
    ],
)
def test_both_orders(first, second, pref, verdict, used, disagree):
    got = both_orders(first, second)
    assert got["preference"] == pytest.approx(pref) and got["verdict"] == verdict
    assert (got["orders_used"], got["order_disagreement"], got["ok"], got["error"]) == (used, disagree, True, None)


def test_both_orders_failing_gives_no_preference():
    failed = both_orders(None, None)
    assert failed["ok"] is False and failed["preference"] is None and failed["orders_used"] == 0 and failed["error"]


SE_3 = 100 * 0.5 / math.sqrt(3)  # [1, 0.5, 0]: mean 0.5, sample sd sqrt((0.25 + 0 + 0.25) / 2) = 0.5


@pytest.mark.parametrize(
    "prefs, expected",
    [
        ([1.0, 0.5, 0.0], dict(win_rate=50.0, standard_error=SE_3, discrete_win_rate=50.0, w=1, b=1, d=1, n=3)),
        # sd of [0.8, 0.6, 0.6, 0.2] about 0.55: sqrt((0.0625 + 0.0025 + 0.0025 + 0.1225) / 3) = sqrt(0.19 / 3)
        (
            [0.8, 0.6, 0.6, 0.2],
            dict(
                win_rate=55.0, standard_error=100 * math.sqrt(0.19 / 3) / 2, discrete_win_rate=75.0, w=3, b=1, d=0, n=4
            ),
        ),
        ([0.5, 0.5, None], dict(win_rate=50.0, standard_error=0.0, discrete_win_rate=50.0, w=0, b=0, d=2, n=2)),
        ([0.9], dict(win_rate=90.0, standard_error=None, discrete_win_rate=100.0, w=1, b=0, d=0, n=1)),
        ([None], dict(win_rate=None, standard_error=None, discrete_win_rate=None, w=0, b=0, d=0, n=0)),
        # a draw is exactly the midpoint, as in alpaca_eval: a hair above it is a win
        ([0.5 + 1e-12, 0.5], dict(win_rate=50.0, standard_error=0.0, discrete_win_rate=75.0, w=1, b=0, d=1, n=2)),
    ],
)
def test_head_to_head_as_alpaca_eval_computes_it(prefs, expected):
    got = head_to_head(prefs)
    assert (got["n_wins"], got["n_wins_base"], got["n_draws"], got["n_total"]) == tuple(
        expected[k] for k in ("w", "b", "d", "n")
    )
    for key in ("win_rate", "standard_error", "discrete_win_rate"):
        assert got[key] == (None if expected[key] is None else pytest.approx(expected[key], abs=1e-6)), key


def test_head_to_head_standard_error_is_pandas_sem():
    pd = pytest.importorskip("pandas")
    rng = random.Random(0)
    prefs = [rng.random() for _ in range(37)] + [0.5, 1.0, 0.0]
    got = head_to_head(prefs)
    assert got["standard_error"] == pytest.approx(pd.Series(prefs).sem() * 100)
    assert got["win_rate"] == pytest.approx(pd.Series(prefs).mean() * 100)


class FakeJudge:
    """Log-probabilities as a judge with a first-position bias that prefers the longer output would give.

    A prompt whose first output holds "<fail>" is answered with an error, as by a failed request.
    """

    name = "fake"
    prompt = LIDR_PROMPT

    def __init__(self):
        self.calls = 0

    def prompt_text(self, messages):
        return messages[-1]["content"]

    def logprobs(self, prompts):
        out = []
        for messages in prompts:
            self.calls += 1
            user = messages[-1]["content"]
            first = user.split('"output": """')[1].split('"""')[0]
            second = user.split('"output": """')[2].split('"""')[0]
            if "<fail>" in first:
                out.append(JudgeError("the judge endpoint answered HTTP 500 (boom)"))
                continue
            p_first = 0.7 if len(first) >= len(second) else 0.5
            out.append({"m": math.log(p_first), "M": math.log(1 - p_first)})
        return out


def test_judge_pairs_judges_both_orders_and_keeps_the_prompts():
    items = [
        {"id": "a", "lang": "es", "instruction": "Di hola.", "output": "Hola, ¿qué tal?", "opponent_output": "Hi"},
        {"id": "b", "lang": "es", "instruction": "Di adiós.", "output": "Adiós!", "opponent_output": "Adiós"},
    ]
    recs = judge_pairs(FakeJudge(), items)
    # a: model first -> 0.7; model second (opponent shorter, first) -> P(M) = 0.5 -> mean 0.6, a win on which
    # the two orders disagree (0.5 does not lean to the model)
    assert recs[0]["orders"][0]["preference"] == pytest.approx(0.7)
    assert recs[0]["orders"][1]["preference"] == pytest.approx(0.5)
    assert recs[0]["preference"] == pytest.approx(0.6) and recs[0]["verdict"] == "win"
    assert recs[0]["order_disagreement"] is True and recs[0]["orders_used"] == 2
    # b: the longer output is the model's: 0.7 first; shown second, the shorter opponent first gets P(m) 0.5
    assert recs[1]["preference"] == pytest.approx(0.6)
    assert [o["model_token"] for o in recs[0]["orders"]] == list(TOKENS)
    first, second = (o["prompt"] for o in recs[0]["orders"])
    assert first.index("Hola, ¿qué tal?") < first.index('"""Hi"""') and second.index('"""Hi"""') < second.index("Hola")
    assert MULTILINGUAL_RULE in first
    assert all(o["error"] is None for r in recs for o in r["orders"])


def test_a_failed_order_keeps_the_other_and_is_counted():
    items = [
        {"id": "a", "lang": "es", "instruction": "Di hola.", "output": "<fail> Hola", "opponent_output": "Hi"},
        {"id": "b", "lang": "es", "instruction": "Di adiós.", "output": "Adiós, amigo", "opponent_output": "Bye"},
    ]
    a, b = judge_pairs(FakeJudge(), items)
    # a: the model's output first fails; shown second (opponent shorter, first) it gets P(M) = 0.5
    assert a["orders"][0]["logprobs"] is None and "HTTP 500" in a["orders"][0]["error"]
    assert a["ok"] and a["orders_used"] == 1 and a["preference"] == pytest.approx(0.5) and a["verdict"] == "tie"
    assert b["orders_used"] == 2
    table = win_rates([{**r, "lang": "es"} for r in (a, b)])["es"]
    assert (table["n"], table["n_total"], table["n_failed"], table["n_one_order"]) == (2, 2, 0, 1)
    assert table["win_rate"] == pytest.approx(100 * (0.5 + 0.6) / 2)
    # the failed order is not a measurement of the judge's mass on its tokens: only a's other order counts
    assert table["verdict_mass"] == pytest.approx(1.0)


def test_identical_outputs_are_draws_without_a_judge_call():
    judge = FakeJudge()
    items = [{"id": "a", "lang": "en", "instruction": "Say hi.", "output": "Hi", "opponent_output": "Hi"}]
    [rec] = judge_pairs(judge, items)
    assert judge.calls == 0 and rec["orders"] == [] and rec["identical_outputs"] is True
    assert rec["preference"] == 0.5 and rec["verdict"] == "tie" and rec["ok"]
    table = win_rates([rec])["en"]
    assert (table["n_draws"], table["n_identical"], table["win_rate"], table["verdict_mass"]) == (1, 1, 50.0, None)


def test_ties_are_exact_draws_and_order_disagreements_are_counted_apart():
    # per instruction, the model's preference shown first and shown second
    cases = {"x": (0.9, 0.1), "y": (0.9, 0.3), "z": (0.8, 0.6), "w": (0.2, 0.4), "v": (0.5, 0.5)}
    recs = [{"lang": "de", "orders": [], "identical_outputs": False, **both_orders(*p)} for p in cases.values()]
    table = win_rates(recs)["de"]
    # draws: x (mean exactly 0.5) and v; wins: y, z; loss: w; the orders disagree on x, y and v
    assert (table["n_wins"], table["n_draws"], table["n_wins_base"]) == (2, 2, 1)
    assert table["order_disagreements"] == 3
    assert table["discrete_win_rate"] == pytest.approx(100 * (2 + 2 / 2) / 5)


def test_parse_openai_logprobs_sums_spelling_variants_and_ignores_others():
    body = {
        "choices": [
            {
                "logprobs": {
                    "content": [
                        {
                            "token": "M",
                            "logprob": math.log(0.5),
                            "top_logprobs": [
                                {"token": "M", "logprob": math.log(0.5)},
                                {"token": "m", "logprob": math.log(0.2)},
                                {"token": " m", "logprob": math.log(0.1)},
                                {"token": "The", "logprob": math.log(0.1)},
                            ],
                        }
                    ]
                }
            }
        ]
    }
    lp = parse_openai_logprobs(body)
    assert set(lp) == {"m", "M"}
    assert math.exp(lp["m"]) == pytest.approx(0.3)
    assert preference(lp, "M") == pytest.approx(0.625)
    with pytest.raises(JudgeError):
        parse_openai_logprobs({"choices": [{"message": {"content": "m"}}]})


@pytest.fixture
def server():
    """A local OpenAI-compatible endpoint on 127.0.0.1 that answers "M" with fixed log-probabilities."""
    seen = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
            status = {"broken": 400, "unauthorised": 401}.get(body["model"])
            if body["model"] == "flaky" and len(seen) % 2 == 0:
                status = 400
            if status:
                self.send_response(status)
                self.end_headers()
                return
            top = [{"token": "M", "logprob": math.log(0.6)}, {"token": "m", "logprob": math.log(0.2)}]
            reply = {
                "choices": [{"message": {"content": "M"}, "logprobs": {"content": [{**top[0], "top_logprobs": top}]}}]
            }
            data = json.dumps(reply).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1", seen
    httpd.shutdown()


def test_openai_judge_against_a_local_server(server, monkeypatch, fake_alpaca_eval):
    write_fake_alpaca_eval(fake_alpaca_eval)
    url, seen = server
    monkeypatch.setenv("LIDR_JUDGE_BASE_URL", url)
    monkeypatch.setenv("LIDR_JUDGE_MODEL", "judge-model")
    monkeypatch.setenv("LIDR_JUDGE_API_KEY", "sk-secret")
    judge = OpenAIJudge.from_env()
    items = [{"id": "1", "lang": "en", "instruction": "Say hi.", "output": "Hi!", "opponent_output": "Hello."}]
    [rec] = judge_pairs(judge, items)
    assert len(seen) == 2
    req = seen[0]
    assert req["path"] == "/v1/chat/completions" and req["auth"] == "Bearer sk-secret"
    assert req["body"]["max_tokens"] == 1 and req["body"]["logprobs"] is True
    assert req["body"]["top_logprobs"] == 5  # the annotator's
    # alpaca_eval's annotator prompt, not lidr's
    assert req["body"]["messages"] == alpaca_eval_prompt().messages("Say hi.", "Hi!", "Hello.")
    assert req["body"]["messages"][0] == {"role": "system", "content": "You are a stand-in judge."}
    # the judge always says "M" with 0.75 of the mass: 0.25 for the model shown first, 0.75 shown second
    assert rec["orders"][0]["preference"] == pytest.approx(0.25)
    assert rec["orders"][1]["preference"] == pytest.approx(0.75)
    # a draw only at exactly 0.5 (alpaca_eval's rule): float rounding may put this mean a hair to either side
    assert rec["preference"] == pytest.approx(0.5) and rec["order_disagreement"]
    assert "sk-secret" not in json.dumps(rec) and url not in json.dumps(rec)


def test_openai_judge_keeps_the_order_that_answered(server):
    url, seen = server
    judge = OpenAIJudge(url, "flaky", None, prompt=LIDR_PROMPT, retries=0)  # every second request: HTTP 400
    items = [{"id": "1", "lang": "en", "instruction": "Say hi.", "output": "Hi!", "opponent_output": "Hello."}]
    [rec] = judge_pairs(judge, items)
    assert len(seen) == 2 and seen[0]["body"]["messages"] == judge_messages("Say hi.", "Hi!", "Hello.")
    assert rec["orders"][1]["logprobs"] is None and "HTTP 400" in rec["orders"][1]["error"]
    assert rec["ok"] and rec["orders_used"] == 1 and rec["preference"] == pytest.approx(0.25)


def test_openai_judge_errors_are_clear_and_keep_the_key_secret(server, monkeypatch):
    url, seen = server
    monkeypatch.delenv("LIDR_JUDGE_BASE_URL", raising=False)
    monkeypatch.setenv("LIDR_JUDGE_MODEL", "judge-model")
    with pytest.raises(JudgeError, match="LIDR_JUDGE_BASE_URL"):
        OpenAIJudge.from_env()
    judge = OpenAIJudge(url, "broken", "sk-secret", prompt=LIDR_PROMPT, retries=0)
    with pytest.raises(JudgeError, match="every judge request failed.*HTTP 400") as e:
        judge.logprobs([judge_messages("a", "b", "c")] * 2)
    assert "sk-secret" not in str(e.value)
    # a wrong key stops at the first request
    seen.clear()
    judge = OpenAIJudge(url, "unauthorised", "sk-secret", prompt=LIDR_PROMPT, retries=3)
    with pytest.raises(JudgeError, match="HTTP 401"):
        judge.logprobs([judge_messages("a", "b", "c")] * 5)
    assert len(seen) == 1
    # so does an address where nothing listens
    judge = OpenAIJudge("http://127.0.0.1:9/v1", "judge-model", None, prompt=LIDR_PROMPT, retries=0)
    with pytest.raises(JudgeError, match="could not be reached"):
        judge.logprobs([judge_messages("a", "b", "c")] * 5)


# ---------------------------------------------------------------------------------------------
# alpaca_eval's annotator prompt


def test_alpaca_eval_prompt_is_read_from_the_package_with_the_multilingual_rule(fake_alpaca_eval):
    write_fake_alpaca_eval(fake_alpaca_eval)
    prompt = alpaca_eval_prompt()
    assert prompt.source == "alpaca_eval==0.6.6:weighted_alpaca_eval_gpt4_turbo+multilingual_rule"
    assert prompt.system == "You are a stand-in judge." and prompt.top_logprobs == 5
    system, user = prompt.messages("Di {output_2} hola.", "Hola", "Hi")
    assert system == {"role": "system", "content": "You are a stand-in judge."}
    text = user["content"]
    assert text.startswith("## Instruction") and text.endswith("## Best Model Identifier")
    assert '"instruction": """Di {output_2} hola."""' in text  # filled in one pass: the instruction is kept as is
    assert text.index('"""Hola"""') < text.index('"""Hi"""')
    assert f"Evaluate the models. {MULTILINGUAL_RULE} Answer m or M." in text
    assert "<|im" not in text and "alpaca_eval" not in sys.modules  # read, not imported


@pytest.mark.parametrize(
    "change, message",
    [
        (("is_binarize: false", "is_binarize: true"), "weighted logprob_parser"),
        (('numerator_token: "m"', 'numerator_token: "M"'), "weighted logprob_parser"),
        (("alpaca_eval_clf_gpt4_turbo/alpaca_eval_clf.txt", "nowhere/clf.txt"), "clf.txt: not found"),
        (("weighted_alpaca_eval_gpt4_turbo:", "other_annotator:"), "weighted logprob_parser"),
    ],
)
def test_alpaca_eval_prompt_checks_the_annotator_config(fake_alpaca_eval, change, message):
    write_fake_alpaca_eval(fake_alpaca_eval, config=FAKE_CONFIG.replace(*change))
    with pytest.raises(JudgeError, match=message):
        alpaca_eval_prompt()


@pytest.mark.parametrize(
    "change, message",
    [
        (("Evaluate the models. Answer", "Evaluate the models\nAnswer"), "no '## Task' section"),
        (("## Task", "## Job"), "no '## Task' section"),
        (("{output_2}", "{output_1}"), "once"),
        (("<|im_start|>system\nYou are a stand-in judge.\n<|im_end|>\n", ""), "a system and a user message"),
    ],
)
def test_alpaca_eval_prompt_checks_the_prompt_file(fake_alpaca_eval, change, message):
    write_fake_alpaca_eval(fake_alpaca_eval, prompt=FAKE_PROMPT.replace(*change))
    with pytest.raises(JudgeError, match=message):
        alpaca_eval_prompt()


def test_alpaca_eval_absent_is_a_clear_error(no_alpaca_eval, monkeypatch):
    with pytest.raises(JudgeError, match=r"alpaca-eval package is not installed: pip install 'lidr\[judge\]'"):
        alpaca_eval_prompt()
    monkeypatch.setenv("LIDR_JUDGE_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("LIDR_JUDGE_MODEL", "judge-model")
    with pytest.raises(JudgeError, match=r"pip install 'lidr\[judge\]'"):
        OpenAIJudge.from_env()


def test_the_local_judge_keeps_lidrs_prompt():
    assert LocalJudge.prompt is LIDR_PROMPT and MULTILINGUAL_RULE in LIDR_PROMPT.user


@pytest.mark.skipif(
    __import__("importlib.util").util.find_spec("alpaca_eval") is None, reason="alpaca-eval is not installed"
)
def test_the_installed_alpaca_eval_prompt():
    prompt = alpaca_eval_prompt()
    assert prompt.source.startswith("alpaca_eval") and prompt.top_logprobs
    text = prompt.messages("I", "A", "B")[1]["content"]
    assert MULTILINGUAL_RULE in text and text.rstrip().endswith("## Best Model Identifier")


def test_local_judge_on_a_tiny_model(tiny_model, params):
    from lidr.backends import make_backend

    backend = make_backend(str(tiny_model), params.generation, params.model, params.seed)
    judge = LocalJudge(backend, batch_size=2, label="tiny")
    items = [
        {
            "id": str(i),
            "lang": "en",
            "instruction": f"Question {i}?",
            "output": "Yes. " * (i + 1),
            "opponent_output": "No.",
        }
        for i in range(3)
    ]
    recs = judge_pairs(judge, items)
    assert len(recs) == 3 and recs[0]["judge"] == "local:tiny"
    for rec in recs:
        for order in rec["orders"]:
            assert set(order["logprobs"]) == {"m", "M"}
            assert all(v <= 0.0 and math.isfinite(v) for v in order["logprobs"].values())
            assert 0.0 <= order["preference"] <= 1.0
        assert rec["ok"] and 0.0 <= rec["preference"] <= 1.0
    # batching with left padding gives the same log-probabilities as one prompt at a time
    text = judge.prompt_text(judge_messages("Question 2?", "Yes. Yes. Yes.", "No."))
    alone = backend.token_logprobs([text], TOKENS)[0]
    short = judge.prompt_text(judge_messages("Q?", "A", "B"))
    batched = backend.token_logprobs([short, text], TOKENS)[1]
    assert alone == pytest.approx(batched, abs=1e-4)
