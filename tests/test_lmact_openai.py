"""The OpenAI-compatible back-end against a local chat-completions server started by the test:
retries (429 + Retry-After, timeouts, 5xx), garbage answers, token usage, images, budgets, resume."""

from __future__ import annotations

import base64
import io
import json
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from rl_agents.lmact.envs import make_env
from rl_agents.lmact.models import BackendError
from rl_agents.lmact.openai_backend import OpenAIChatModel, retry_after_seconds
from rl_agents.lmact.demos import record_demos
from rl_agents.lmact.prompt import ContextBudgetError, PromptBuilder, estimate_message_tokens
from rl_agents.lmact.runner import load_results, run

GARBAGE = "I am not sure."


def first_free_cell(user_content: str) -> str:
    """The first empty cell of the last tic-tac-toe board in a text prompt (a legal move)."""
    board = user_content.rsplit("Observation", 1)[1].splitlines()[2:5]
    for r, row in enumerate(board):
        for c, cell in enumerate(row.split()[1:]):
            if cell == ".":
                return f"{'abc'[c]}{r + 1}"
    return "a1"


class StubServer:
    """Chat completions on 127.0.0.1, each answered after `delay` s. `script` holds the behaviour
    of the next requests: ("status", code, headers), ("sleep", seconds) (then no answer), ("reply",
    text), ("raw", code, bytes); when empty,
    `answer` decides: every `garbage_every`-th answer is GARBAGE, the others the first free cell.
    Usage sent: prompt_tokens 100 + n, completion_tokens 3 (n = answer number)."""

    def __init__(self):
        self.requests: list[dict] = []
        self.script: deque = deque()
        self.sent: list[dict] = []  # the answers delivered: text, usage
        self.garbage_every = 4
        self.fail_from: int | None = None  # answer 503 once this many answers were sent
        self.delay = 0.0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                time.sleep(server.delay)
                step = server.script.popleft() if server.script else ("answer",)
                if server.fail_from is not None and len(server.sent) >= server.fail_from:
                    step = ("status", 503, {})
                if step[0] == "sleep":
                    time.sleep(step[1])
                    return  # the client has given up; close without an answer
                if step[0] == "status":
                    self._send(step[1], {"error": {"message": "try later"}}, step[2])
                    return
                if step[0] == "raw":
                    self._send(step[1], step[2])
                    return
                text = step[1] if step[0] == "reply" else server.answer(body)
                usage = {"prompt_tokens": 100 + len(server.sent), "completion_tokens": 3}
                server.sent.append({"text": text, **usage})
                self._send(200, {"id": "x", "object": "chat.completion", "usage": usage,
                                 "choices": [{"index": 0, "message": {"role": "assistant", "content": text}}]})

            def _send(self, code, payload, headers=None):
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                try:
                    self.send_response(code)
                    for k, v in (headers or {}).items():
                        self.send_header(k, v)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def answer(self, body: dict) -> str:
        if (len(self.sent) + 1) % self.garbage_every == 0:
            return GARBAGE
        if len(body["messages"]) < 2:
            return "ok"
        content = body["messages"][1]["content"]
        return f"Action: {first_free_cell(content)}" if isinstance(content, str) else "b2"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = StubServer()
    yield s
    s.close()


def _model(server, sleeps, **kw):
    return OpenAIChatModel("stub-model", server.url, api_key="secret", timeout=kw.pop("timeout", 0.3),
                           max_retries=kw.pop("max_retries", 3), backoff=0.01, sleep=sleeps.append, **kw)


def test_harness_through_the_endpoint_with_retries_garbage_and_usage(server, tmp_path):
    server.script.extend([("status", 429, {"Retry-After": "2"}), ("sleep", 1.0)])
    sleeps: list[float] = []
    model = _model(server, sleeps)
    path = tmp_path / "r.jsonl"
    t0 = time.perf_counter()
    run(make_env("tictactoe"), model, [0, 1], seeds=[0, 1], path=path)
    assert time.perf_counter() - t0 < 8
    # 429: waited the Retry-After (2 s, through the injected sleep); the timeout: backoff 0.01 * 2**1
    assert sleeps == [2.0, 0.02] and model.usage["retries"] == 2
    eps = load_results(path)["episodes"]
    steps = sum(e["steps"] for e in eps)
    assert len(eps) == 4 and steps == len(server.sent) == model.usage["calls"] == len(server.requests) - 2
    garbage = sum(a["text"] == GARBAGE for a in server.sent)
    assert garbage == len(server.sent) // 4 >= 2
    assert sum(e["illegal"] for e in eps) == garbage  # each garbage answer counted and replaced
    assert all(r == GARBAGE for e in eps for r in e["illegal_replies"])
    assert sum(e["prompt_tokens"] for e in eps) == sum(a["prompt_tokens"] for a in server.sent) == \
        model.usage["prompt_tokens"]
    assert sum(e["completion_tokens"] for e in eps) == 3 * steps
    for req in server.requests:
        assert req["path"] == "/v1/chat/completions" and req["headers"]["Authorization"] == "Bearer secret"
        assert req["body"]["model"] == "stub-model" and req["body"]["max_tokens"] == 32
    users = [r["body"]["messages"][1]["content"] for r in server.requests]
    assert users[0].startswith("There are no demonstrations.")
    assert sum("Demonstration 1:" in u for u in users) == sum(e["steps"] for e in eps if e["num_demos"] == 1)


def test_images_reach_the_endpoint_as_data_urls(server):
    from PIL import Image

    env = make_env("tictactoe")
    rows = run(env, _model(server, []), [1], seeds=[2], obs_format="rgb")
    (ep,) = [r for r in rows if r["type"] == "episode"]
    demo = [r for r in rows if r["type"] == "demo"][0]
    assert len(server.requests) == ep["steps"]
    for t, req in enumerate(server.requests):
        parts = req["body"]["messages"][1]["content"]
        urls = [p["image_url"]["url"] for p in parts if p["type"] == "image_url"]
        assert len(urls) == len(demo["actions"]) + t + 1  # demo steps, history, the observation
        assert all(u.startswith("data:image/png;base64,") for u in urls)
    last = server.requests[0]["body"]["messages"][1]["content"]
    url = [p for p in last if p["type"] == "image_url"][-1]["image_url"]["url"]
    img = np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB"))
    assert np.array_equal(img, env.render_rgb(env.reset(2)))


def test_errors_stop_the_run_and_it_resumes(server, tmp_path):
    sleeps: list[float] = []
    with pytest.raises(BackendError, match="HTTP 401"):
        server.script.append(("status", 401, {}))
        _model(server, sleeps).complete([{"role": "user", "content": "hi"}])
    assert sleeps == [] and len(server.requests) == 1  # not retried
    server.fail_from = 8  # the endpoint goes down after 8 answers (the first episode has <= 5 steps)
    path = tmp_path / "r.jsonl"
    with pytest.raises(BackendError, match="gave up after 3 attempts, last: HTTP 503"):
        run(make_env("tictactoe"), _model(server, sleeps, max_retries=2), [0], seeds=[0, 1, 2], path=path)
    assert sleeps == [0.01, 0.02]
    done = load_results(path)["episodes"]
    assert 1 <= len(done) < 3
    server.fail_from = None
    before = len(server.sent)
    run(make_env("tictactoe"), _model(server, sleeps), [0], seeds=[0, 1, 2], path=path)
    eps = load_results(path)["episodes"]
    assert sorted(e["seed"] for e in eps) == [0, 1, 2]
    assert len(server.sent) - before == sum(e["steps"] for e in eps if e not in done)


def test_bad_responses_are_backend_errors(server):
    from rl_agents.lmact.models import Query
    from rl_agents.lmact.prompt import Prompt

    model = _model(server, [])
    query = Query(Prompt([{"role": "user", "content": "x"}], 10, 0), "", [], [], [], None, 0)
    server.script.append(("raw", 200, b"<html>proxy error</html>"))
    with pytest.raises(BackendError, match="not JSON"):
        model.act(query)
    server.script.append(("raw", 200, b'{"error": "overloaded"}'))
    with pytest.raises(BackendError, match="no choices"):
        model.act(query)
    server.script.append(("raw", 200, b'{"choices": [{"message": {"content": null}}]}'))
    assert model.act(query).text == ""  # no content: parsed as illegal, no usage
    sleeps: list[float] = []
    dead = OpenAIChatModel("m", "http://127.0.0.1:9/v1", max_retries=1, backoff=0.01, timeout=0.5, sleep=sleeps.append)
    with pytest.raises(BackendError, match="gave up after 2 attempts, last: ConnectionError"):
        dead.complete([])
    assert sleeps == [0.01]


def test_configuration_from_the_environment(server, monkeypatch):
    monkeypatch.setenv("LMACT_BASE_URL", server.url + "/")
    monkeypatch.setenv("LMACT_MODEL", "env-model")
    monkeypatch.delenv("LMACT_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "from-openai")
    model = OpenAIChatModel(timeout=5)
    assert model.name == "openai:env-model" and model.url == server.url + "/chat/completions"
    model.complete([{"role": "user", "content": "hi"}])
    monkeypatch.setenv("LMACT_API_KEY", "from-lmact")
    OpenAIChatModel(timeout=5).complete([{"role": "user", "content": "hi"}])
    monkeypatch.delenv("LMACT_API_KEY")
    monkeypatch.delenv("OPENAI_API_KEY")
    OpenAIChatModel(timeout=5).complete([{"role": "user", "content": "hi"}])  # a local server needs no key
    auth = [r["headers"].get("Authorization") for r in server.requests]
    assert auth == ["Bearer from-openai", "Bearer from-lmact", None]
    assert all(r["body"]["model"] == "env-model" for r in server.requests)


def test_retry_after_forms():
    assert retry_after_seconds("3") == 3.0 and retry_after_seconds("0.5") == 0.5
    assert retry_after_seconds("-4") == 0.0 and retry_after_seconds("soon") is None and retry_after_seconds(None) is None
    now = 1_445_412_470.0  # 10 s before Wed, 21 Oct 2015 07:28:00 GMT
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=now) == pytest.approx(10.0)


def test_context_budget_drops_demos_before_the_call(server):
    env = make_env("tictactoe")
    sleeps: list[float] = []
    roomy = run(env, _model(server, sleeps), [4], seeds=[0])
    full = next(r for r in roomy if r["type"] == "episode")
    assert full["demos_in_context"] == 4
    n_full = len(server.requests)
    # a budget that holds the first prompt with two demos: the prompts carry fewer, the record says so
    ctx = PromptBuilder(env, record_demos(env, 4), "text").episode()
    two = ctx.prompt(env.reset(0), 2)[0].est_tokens
    budget = two + 32 + 5
    tight = _model(server, sleeps, max_context_tokens=budget, max_output_tokens=32)
    rows = run(env, tight, [4], seeds=[0])
    ep = next(r for r in rows if r["type"] == "episode")
    assert ep["demos_in_context"] <= 2 and ep["steps"] == len(server.requests) - n_full
    first = server.requests[n_full]["body"]["messages"]
    assert "Demonstration 2:" in first[1]["content"] and "Demonstration 3:" not in first[1]["content"]
    for req in server.requests[n_full:]:
        assert estimate_message_tokens(req["body"]["messages"]) + 32 <= budget
    with pytest.raises(ContextBudgetError, match="even without demonstrations"):
        run(env, _model(server, sleeps, max_context_tokens=100), [4], seeds=[0])
    with pytest.raises(ContextBudgetError, match="4 demonstrations"):
        run(env, tight, [4], seeds=[0], drop_demos=False)
