"""transformers backend: the model and tokenizer behind the `Backend` interface (CPU or GPU).

Generation runs the project's own greedy loop (`lidr.backends.decode`), on CPU inside
`cpu_kernels` (`lidr.backends.cpu_kernels`); judging is one left-padded forward pass.
"""

from __future__ import annotations

import torch

from lidr.backends import Completion, Decoding, Request, candidate_token_ids, chat_prompt, prompt_ids
from lidr.backends.cpu_kernels import cpu_kernels
from lidr.backends.decode import greedy_decode
from lidr.config import GenerationParams, ModelParams
from lidr.model import load_causal_lm, load_tokenizer


class TransformersBackend:
    name = "transformers"

    def __init__(self, model_dir: str, generation: GenerationParams, model: ModelParams):
        if generation.threads:
            torch.set_num_threads(generation.threads)
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.tokenizer = load_tokenizer(model_dir, model)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = load_causal_lm(model_dir, model).to(self.device).eval()
        self.batch_size = generation.batch_size
        self.chunk_size = generation.chunk_size
        self.draft_tokens = generation.draft_tokens
        self.prefill_tokens = generation.prefill_tokens
        self.eos_ids = end_of_turn_ids(self.tokenizer, self.model)

    def render(self, request: Request) -> str:
        return chat_prompt(self.tokenizer, request)

    def prompt_length(self, text: str) -> int:
        return len(prompt_ids(self.tokenizer, text))

    def generate_batch(self, texts: list[str], decoding: Decoding) -> list[Completion]:
        return self._generate_batch([prompt_ids(self.tokenizer, t) for t in texts], decoding)

    @torch.inference_mode()
    def _generate_batch(self, batch: list[list[int]], decoding: Decoding) -> list[Completion]:
        with cpu_kernels(self.model):
            return greedy_decode(
                self.model,
                self.tokenizer,
                batch,
                decoding,
                self.eos_ids,
                self.batch_size,
                self.draft_tokens,
                self.prefill_tokens,
            )

    @torch.inference_mode()
    def token_logprobs(self, texts: list[str], candidates: tuple[str, ...]) -> list[dict[str, float]]:
        """Next-token log-probabilities of `candidates` after each text: one left-padded forward pass."""
        ids = candidate_token_ids(self.tokenizer, candidates)
        batch = [prompt_ids(self.tokenizer, t) for t in texts]
        pad, width = self.tokenizer.pad_token_id, max(len(b) for b in batch)
        input_ids = torch.tensor([[pad] * (width - len(b)) + b for b in batch], device=self.device)
        attention = torch.tensor([[0] * (width - len(b)) + [1] * len(b) for b in batch], device=self.device)
        positions = (attention.cumsum(-1) - 1).clamp(min=0)  # left padding must not shift positions
        logits = self.model(input_ids=input_ids, attention_mask=attention, position_ids=positions).logits[:, -1]
        logp = torch.log_softmax(logits.float(), dim=-1)[:, ids].tolist()
        return [dict(zip(candidates, row, strict=True)) for row in logp]


def end_of_turn_ids(tokenizer, model) -> list[int]:
    """Token ids that end an assistant turn: eos plus the chat template's end-of-turn tokens."""
    ids = set()
    for cand in (tokenizer.eos_token_id, getattr(model.generation_config, "eos_token_id", None)):
        if isinstance(cand, int):
            ids.add(cand)
        elif isinstance(cand, list):
            ids.update(cand)
    for token in ("<|im_end|>", "<|eot_id|>", "<|end_of_text|>", "<end_of_turn>"):
        tid = tokenizer.convert_tokens_to_ids(token)
        if isinstance(tid, int) and tid != tokenizer.unk_token_id and tid >= 0:
            ids.add(tid)
    return sorted(ids)
