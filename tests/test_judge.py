"""The judge: log-probabilities -> preference, both-orders averaging, the HTTP judge, the local judge."""

import http.server
import json
import math
import threading

import pytest

from lidr.errors import JudgeError
from lidr.judge import (
    MULTILINGUAL_RULE,
    TOKENS,
    LocalJudge,
    OpenAIJudge,
    both_orders,
    judge_messages,
    judge_pairs,
    parse_openai_logprobs,
    preference,
)


def test_preference_is_the_renormalised_mass_on_the_named_token():
    lp = {"m": math.log(0.6), "M": math.log(0.2)}  # the other 0.2 went to other tokens
    assert preference(lp, "m") == pytest.approx(0.75)
    assert preference(lp, "M") == pytest.approx(0.25)
    assert preference({"m": -0.01}, "M") == 0.0  # "M" outside the returned top log-probabilities
    assert preference({"M": -3.0}, "M") == 1.0
    assert preference({}, "m") is None


def test_both_orders_average_cancels_a_position_bias():
    # A judge that always prefers the first output: 0.9 for the model shown first, 0.1 shown second.
    assert both_orders(0.9, 0.1) == {"preference": pytest.approx(0.5), "verdict": "tie", "ok": True, "error": None}
    assert both_orders(0.8, 0.6)["verdict"] == "win"
    assert both_orders(0.8, 0.6)["preference"] == pytest.approx(0.7)
    assert both_orders(0.2, 0.4)["verdict"] == "lose"
    failed = both_orders(0.7, None)
    assert failed["ok"] is False and failed["preference"] is None and failed["error"]


class FakeJudge:
    """Log-probabilities as a judge with a first-position bias that prefers the longer output would give."""

    name = "fake"

    def prompt_text(self, messages):
        return messages[-1]["content"]

    def logprobs(self, prompts):
        out = []
        for messages in prompts:
            user = messages[-1]["content"]
            first = user.split('"output": """')[1].split('"""')[0]
            second = user.split('"output": """')[2].split('"""')[0]
            p_first = 0.7 if len(first) >= len(second) else 0.5
            out.append({"m": math.log(p_first), "M": math.log(1 - p_first)})
        return out


def test_judge_pairs_judges_both_orders_and_keeps_the_prompts():
    items = [
        {"id": "a", "lang": "es", "instruction": "Di hola.", "output": "Hola, ¿qué tal?", "opponent_output": "Hi"},
        {"id": "b", "lang": "es", "instruction": "Di adiós.", "output": "Adiós", "opponent_output": "Adiós"},
    ]
    recs = judge_pairs(FakeJudge(), items)
    # a: model first -> 0.7; model second (opponent shorter, first) -> P(M) = 0.5 -> mean 0.6, a tie
    assert recs[0]["orders"][0]["preference"] == pytest.approx(0.7)
    assert recs[0]["orders"][1]["preference"] == pytest.approx(0.5)
    assert recs[0]["preference"] == pytest.approx(0.6) and recs[0]["verdict"] == "tie"
    # b: identical outputs -> the bias alone: 0.7 first, 0.3 second -> exactly 0.5
    assert recs[1]["preference"] == pytest.approx(0.5)
    assert [o["model_token"] for o in recs[0]["orders"]] == list(TOKENS)
    first, second = (o["prompt"] for o in recs[0]["orders"])
    assert first.index("Hola, ¿qué tal?") < first.index('"""Hi"""') and second.index('"""Hi"""') < second.index("Hola")
    assert MULTILINGUAL_RULE in first


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
            if body["model"] == "broken":
                self.send_response(400)
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


def test_openai_judge_against_a_local_server(server, monkeypatch):
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
    assert req["body"]["max_tokens"] == 1 and req["body"]["logprobs"] is True and req["body"]["top_logprobs"] >= 2
    assert req["body"]["messages"] == judge_messages("Say hi.", "Hi!", "Hello.")
    # the judge always says "M" with 0.75 of the mass: 0.25 for the model shown first, 0.75 shown second
    assert rec["orders"][0]["preference"] == pytest.approx(0.25)
    assert rec["orders"][1]["preference"] == pytest.approx(0.75)
    assert rec["preference"] == pytest.approx(0.5) and rec["verdict"] == "tie"
    assert "sk-secret" not in json.dumps(rec) and url not in json.dumps(rec)


def test_openai_judge_errors_are_clear_and_keep_the_key_secret(server, monkeypatch):
    url, _ = server
    monkeypatch.delenv("LIDR_JUDGE_BASE_URL", raising=False)
    monkeypatch.setenv("LIDR_JUDGE_MODEL", "judge-model")
    with pytest.raises(JudgeError, match="LIDR_JUDGE_BASE_URL"):
        OpenAIJudge.from_env()
    judge = OpenAIJudge(url, "broken", "sk-secret", retries=0)
    with pytest.raises(JudgeError, match="HTTP 400") as e:
        judge.logprobs([judge_messages("a", "b", "c")])
    assert "sk-secret" not in str(e.value)


def test_local_judge_on_a_tiny_model(tiny_model, params):
    from lidr.backends import make_backend

    backend = make_backend(params, str(tiny_model))
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
