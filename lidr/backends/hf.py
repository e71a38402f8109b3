"""transformers backend: batched, length-sorted, left-padded greedy decoding that stops at end of turn."""

from __future__ import annotations

import torch

from lidr.backends import Completion, Decoding, Request, cut_at_stop
from lidr.config import Params
from lidr.model import load_causal_lm, load_tokenizer


class TransformersBackend:
    name = "transformers"

    def __init__(self, model_dir: str, params: Params):
        if params.generation.threads:
            torch.set_num_threads(params.generation.threads)
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.tokenizer = load_tokenizer(model_dir, params)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = load_causal_lm(model_dir, params).to(self.device).eval()
        self.batch_size = params.generation.batch_size
        self.eos_ids = end_of_turn_ids(self.tokenizer, self.model)

    def render(self, request: Request) -> str:
        text = self.tokenizer.apply_chat_template(request.message_dicts(), add_generation_prompt=True, tokenize=False)
        return text + request.prefix

    def prompt_length(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def generate_batch(self, texts: list[str], decoding: Decoding) -> list[Completion]:
        return self._generate_batch(
            [self.tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts], decoding
        )

    @torch.inference_mode()
    def _generate_batch(self, batch: list[list[int]], decoding: Decoding) -> list[Completion]:
        pad = self.tokenizer.pad_token_id
        width = max(len(ids) for ids in batch)
        input_ids = torch.tensor([[pad] * (width - len(ids)) + ids for ids in batch], device=self.device)
        attention = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in batch], device=self.device)
        kwargs = {}
        if decoding.stop:
            kwargs = {"stop_strings": list(decoding.stop), "tokenizer": self.tokenizer}
        out = self.model.generate(
            input_ids=input_ids,
            attention_mask=attention,
            do_sample=False,
            max_new_tokens=decoding.max_new_tokens,
            repetition_penalty=decoding.repetition_penalty,
            eos_token_id=self.eos_ids,
            pad_token_id=pad,
            **kwargs,
        )
        completions = []
        for row in out[:, width:].tolist():
            n, ended = 0, False
            for tok in row:
                n += 1
                if tok in self.eos_ids:
                    ended = True
                    break
            tokens = row[:n] if not ended else row[: n - 1]
            text = self.tokenizer.decode(tokens, skip_special_tokens=True)
            text, stopped = cut_at_stop(text, decoding.stop)
            reason = "stop" if ended or stopped or n < decoding.max_new_tokens else "length"
            completions.append(Completion(text=text, finish_reason=reason, n_tokens=n))
        return completions

    @torch.inference_mode()
    def token_logprobs(self, texts: list[str], candidates: tuple[str, ...]) -> list[dict[str, float]]:
        """Next-token log-probabilities of `candidates` after each text: one left-padded forward pass."""
        from lidr.backends import candidate_token_ids

        ids = candidate_token_ids(self.tokenizer, candidates)
        batch = [self.tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
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
