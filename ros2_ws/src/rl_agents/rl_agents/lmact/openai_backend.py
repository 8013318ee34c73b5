"""A model behind any OpenAI-compatible chat-completions endpoint (OpenAI, vLLM, llama.cpp, ...).

Configuration: arguments, else the environment: LMACT_BASE_URL (default https://api.openai.com/v1;
the request goes to BASE_URL/chat/completions), LMACT_MODEL, LMACT_API_KEY or OPENAI_API_KEY (no
Authorization header without one, as local servers need none).

Each call: a context-budget check (the prompt's token estimate plus `max_output_tokens` must fit
`max_context_tokens`; the runner drops demos before it gets here), then a POST with a per-call
timeout. 429, 5xx, timeouts and connection errors are retried up to `max_retries` times, waiting
Retry-After when the server sends it (seconds or an HTTP date, at most `max_retry_after`), else
`backoff * 2**attempt` seconds (at most `max_backoff`). Other HTTP errors raise at once. Token
usage comes from the response's `usage` and is summed in `self.usage`.
"""

from __future__ import annotations

import email.utils
import os
import time
from typing import Callable

import requests

from .models import BackendError, Query, Reply
from .prompt import ContextBudgetError

RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """A Retry-After header (delta seconds or an HTTP date) in seconds, None when absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


def reply_text(message: dict) -> str:
    """The text of a chat message's content (a string, None, or a list of text parts)."""
    content = message.get("content")
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return content or ""


class OpenAIChatModel:
    max_output_tokens: int

    def __init__(self, model: str | None = None, base_url: str | None = None, api_key: str | None = None, *,
                 timeout: float = 60.0, max_retries: int = 6, backoff: float = 1.0, max_backoff: float = 60.0,
                 max_retry_after: float = 300.0, temperature: float = 0.0, max_output_tokens: int = 32,
                 max_context_tokens: int | None = None, sleep: Callable[[float], None] = time.sleep,
                 session: requests.Session | None = None):
        self.model = model or os.environ.get("LMACT_MODEL")
        if not self.model:
            raise ValueError("no model name for the openai back-end: pass --model-name or set LMACT_MODEL")
        base = base_url or os.environ.get("LMACT_BASE_URL") or "https://api.openai.com/v1"
        self.url = base.rstrip("/") + "/chat/completions"
        self.api_key = api_key or os.environ.get("LMACT_API_KEY") or os.environ.get("OPENAI_API_KEY")
        if timeout <= 0 or max_retries < 0:
            raise ValueError(f"bad timeout {timeout} / max_retries {max_retries}")
        self.name = f"openai:{self.model}"
        self.timeout, self.max_retries, self.backoff, self.max_backoff = timeout, max_retries, backoff, max_backoff
        self.max_retry_after, self.temperature = max_retry_after, temperature
        self.max_output_tokens, self.max_context_tokens = max_output_tokens, max_context_tokens
        self.sleep = sleep
        self.session = session or requests.Session()
        self.usage = {"calls": 0, "retries": 0, "prompt_tokens": 0, "completion_tokens": 0}

    def reset(self, seed: int) -> None:
        pass

    def act(self, query: Query) -> Reply:
        if self.max_context_tokens is not None and \
                query.prompt.est_tokens + self.max_output_tokens > self.max_context_tokens:
            raise ContextBudgetError(f"the prompt needs ~{query.prompt.est_tokens} tokens + {self.max_output_tokens} "
                                     f"for the answer, more than max_context_tokens {self.max_context_tokens}")
        data = self.complete(query.prompt.messages)
        try:
            text = reply_text(data["choices"][0]["message"])
        except (KeyError, IndexError, TypeError) as exc:
            raise BackendError(f"{self.url}: no choices[0].message in the response: {str(data)[:200]}") from exc
        usage = data.get("usage") or {}
        reply = Reply(text, int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0))
        self.usage["calls"] += 1
        self.usage["prompt_tokens"] += reply.prompt_tokens
        self.usage["completion_tokens"] += reply.completion_tokens
        return reply

    def complete(self, messages: list[dict]) -> dict:
        """POST one chat completion (with the retries) -> the response JSON."""
        body = {"model": self.model, "messages": messages, "temperature": self.temperature,
                "max_tokens": self.max_output_tokens}
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        for attempt in range(self.max_retries + 1):
            wait = min(self.max_backoff, self.backoff * 2 ** attempt)
            try:
                r = self.session.post(self.url, json=body, headers=headers, timeout=self.timeout)
            except (requests.Timeout, requests.ConnectionError) as exc:
                problem = f"{type(exc).__name__} (timeout {self.timeout} s)"
            else:
                if r.status_code == 200:
                    try:
                        return r.json()
                    except ValueError as exc:
                        raise BackendError(f"{self.url}: the response is not JSON: {r.text[:200]!r}") from exc
                if r.status_code not in RETRY_STATUS:
                    raise BackendError(f"{self.url}: HTTP {r.status_code}: {r.text[:300]}")
                problem = f"HTTP {r.status_code}"
                after = retry_after_seconds(r.headers.get("Retry-After"))
                if after is not None:
                    wait = min(after, self.max_retry_after)
            if attempt == self.max_retries:
                raise BackendError(f"{self.url}: gave up after {attempt + 1} attempts, last: {problem}")
            self.usage["retries"] += 1
            self.sleep(wait)
        raise AssertionError("unreachable")
