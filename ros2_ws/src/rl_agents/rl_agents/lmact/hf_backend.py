"""A local Hugging Face `transformers` causal LM as the model (text observations only).

`transformers` (and torch) are imported when the model is made; without transformers the
constructor raises BackendUnavailable, a ValueError, so `brs lmact run --model hf` exits 2 with a
one-line message. The prompt goes through the tokenizer's chat template; decoding is greedy;
the budget check counts the template's real tokens (default budget: the model's
max_position_embeddings).
"""

from __future__ import annotations

from .models import Query, Reply
from .prompt import ContextBudgetError


class BackendUnavailable(ValueError):
    """The back-end's packages are not installed."""


class HFModel:
    def __init__(self, model: str, device: str | None = None, max_output_tokens: int = 16,
                 max_context_tokens: int | None = None):
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError as exc:
            raise BackendUnavailable(f"the hf back-end needs the `transformers` package, which is not installed "
                                     f"({exc}); pip install transformers, or use --model openai with a local "
                                     "server") from exc
        self.torch = torch
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.tokenizer = AutoTokenizer.from_pretrained(model)
        self.lm = AutoModelForCausalLM.from_pretrained(model, torch_dtype="auto").to(self.device).eval()
        self.name = f"hf:{model}"
        self.max_output_tokens = max_output_tokens
        self.max_context_tokens = max_context_tokens or getattr(self.lm.config, "max_position_embeddings", None)
        self.usage = {"calls": 0, "prompt_tokens": 0, "completion_tokens": 0}

    def reset(self, seed: int) -> None:
        pass

    def act(self, query: Query) -> Reply:
        messages = []
        for m in query.prompt.messages:
            content = m["content"]
            if not isinstance(content, str):
                if any(p.get("type") != "text" for p in content):
                    raise ValueError("the hf back-end takes text prompts only; use --obs text or vector")
                content = "".join(p["text"] for p in content)
            messages.append({"role": m["role"], "content": content})
        ids = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt")
        n = int(ids.shape[1])
        if self.max_context_tokens is not None and n + self.max_output_tokens > self.max_context_tokens:
            raise ContextBudgetError(f"the prompt has {n} tokens + {self.max_output_tokens} for the answer, more "
                                     f"than max_context_tokens {self.max_context_tokens}")
        with self.torch.no_grad():
            out = self.lm.generate(ids.to(self.device), max_new_tokens=self.max_output_tokens, do_sample=False)
        new = out[0, n:]
        self.usage["calls"] += 1
        self.usage["prompt_tokens"] += n
        self.usage["completion_tokens"] += int(new.shape[0])
        return Reply(self.tokenizer.decode(new, skip_special_tokens=True), n, int(new.shape[0]))
