"""One generation interface, two backends.

The rest of the code hands a backend chat messages and decoding settings and gets completions
back in the same order. Only the backend modules import transformers' generate or vLLM, and vLLM
is imported only when chosen. Both backends render prompts and turn them into token ids here
(`chat_prompt`, `prompt_ids`), so both run a prompt as the same tokens.

- `hf`: the transformers backend (CPU or GPU), decoding with `decode.greedy_decode`;
- `decode`: that greedy loop (continuous batching, prompt-lookup guesses, an in-place KV cache);
- `cpu_kernels`: linear and attention kernels for a few rows on CPU, swapped in while decoding;
- `vllm_backend`: the vLLM backend (GPU).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

from lidr.errors import ModelError

if TYPE_CHECKING:
    from lidr.config import GenerationParams, ModelParams


@dataclass(frozen=True)
class Request:
    messages: tuple[tuple[str, str], ...]  # ((role, content), ...)
    prefix: str = ""  # text the assistant turn starts with, e.g. "<translated>\n"

    @classmethod
    def chat(cls, messages: list[dict], prefix: str = "") -> Request:
        return cls(tuple((m["role"], m["content"]) for m in messages), prefix)

    def message_dicts(self) -> list[dict]:
        return [{"role": r, "content": c} for r, c in self.messages]


@dataclass(frozen=True)
class Decoding:
    max_new_tokens: int
    repetition_penalty: float = 1.0
    stop: tuple[str, ...] = ()  # stop strings, kept at the end of the text
    seed: int = 0
    loop_span: int = 0  # end a sequence whose last loop_span tokens repeat one short block (finish "loop"); 0: off


@dataclass(frozen=True)
class Completion:
    text: str
    finish_reason: Literal["stop", "length", "loop"]  # loop: ended early as degenerate
    n_tokens: int


class Backend(Protocol):
    name: str
    batch_size: int  # rows decoded together
    chunk_size: int  # prompts handed to generate_batch at once (the journal's unit)

    def render(self, request: Request) -> str: ...  # the prompt text, through the tokenizer's chat template

    def prompt_length(self, text: str) -> int: ...

    def generate_batch(self, texts: list[str], decoding: Decoding) -> list[Completion]: ...

    # log-probabilities of each candidate (one token each) as the next token after each text
    def token_logprobs(self, texts: list[str], candidates: tuple[str, ...]) -> list[dict[str, float]]: ...


def chat_prompt(tokenizer, request: Request) -> str:
    """The prompt text: the messages through the tokenizer's chat template, the assistant turn opened,
    then the request's prefix."""
    text = tokenizer.apply_chat_template(request.message_dicts(), add_generation_prompt=True, tokenize=False)
    return text + request.prefix


def prompt_ids(tokenizer, text: str) -> list[int]:
    """The prompt's token ids as the template wrote them: no special tokens added, since a chat-templated
    prompt already starts with the BOS token and tokenizing with special tokens would add a second one."""
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def cut_at_stop(text: str, stops: tuple[str, ...]) -> tuple[str, bool]:
    """Text up to and including the first stop string, and whether one was found."""
    best = None
    for stop in stops:
        i = text.find(stop)
        if i >= 0 and (best is None or i + len(stop) < best):
            best = i + len(stop)
    return (text, False) if best is None else (text[:best], True)


def candidate_token_ids(tokenizer, candidates: tuple[str, ...]) -> list[int]:
    """The token id of each candidate; each must be exactly one token of this tokenizer."""
    ids = []
    for cand in candidates:
        encoded = tokenizer(cand, add_special_tokens=False)["input_ids"]
        if len(encoded) != 1:
            raise ModelError(f"{cand!r} is {len(encoded)} tokens for this tokenizer; a judge token must be one token")
        ids.append(encoded[0])
    return ids


def make_backend(model_dir: str, generation: GenerationParams, model: ModelParams, seed: int = 0) -> Backend:
    """The backend that `generation.backend` chooses, loaded with the model in `model_dir`."""
    g = generation
    if g.backend == "vllm":
        from lidr.backends.vllm_backend import VllmBackend

        return VllmBackend(model_dir, generation, model, seed)
    from lidr.backends.hf import TransformersBackend

    return TransformersBackend(model_dir, generation, model)
