"""transformers backend: batched, left-padded greedy decoding that stops at end of turn.

`greedy_decode` is our own decoding loop rather than `model.generate`: the same greedy choice
(argmax after the repetition penalty over the prompt and the tokens so far), but a row that
ends (end of turn, stop string, a detected loop, the token limit) leaves the batch at once, so
the rest of the batch runs smaller instead of carrying it to the longest member's end. Pad
tokens are never penalised, so a row's output does not depend on its batch neighbours' lengths.
"""

from __future__ import annotations

import torch
from transformers import DynamicCache

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
        return greedy_decode(self.model, self.tokenizer, batch, decoding, self.eos_ids)

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


def greedy_decode(
    model, tokenizer, batch: list[list[int]], decoding: Decoding, eos_ids: list[int]
) -> list[Completion]:
    """Greedy completions of the token-id prompts in `batch`; finished rows are dropped from the batch."""
    device = model.device
    pad = tokenizer.pad_token_id
    width = max(len(ids) for ids in batch)
    input_ids = torch.tensor([[pad] * (width - len(ids)) + ids for ids in batch], device=device)
    attention = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in batch], device=device)
    positions = (attention.cumsum(-1) - 1).clamp(min=0)
    cache = DynamicCache(config=model.config)
    logits = model(
        input_ids=input_ids, attention_mask=attention, position_ids=positions, past_key_values=cache, logits_to_keep=1
    ).logits[:, -1, :]
    penalty = decoding.repetition_penalty
    seen = None
    if penalty != 1.0:  # which vocabulary entries each row has seen: its prompt (not the padding) and output
        seen = torch.zeros(logits.shape, dtype=torch.bool, device=device)
        seen[attention.nonzero(as_tuple=True)[0], input_ids[attention.bool()]] = True
    eos = set(eos_ids)
    stop_tail = max((len(s) for s in decoding.stop), default=0) + 2  # tokens enough to hold any stop string
    alive = list(range(len(batch)))  # batch row of each row still running
    out: list[list[int]] = [[] for _ in batch]
    reasons: list[str] = ["length"] * len(batch)
    positions = positions[:, -1:]
    for step in range(decoding.max_new_tokens):
        logits = logits.float()
        if seen is not None:
            logits = torch.where(seen, torch.where(logits < 0, logits * penalty, logits / penalty), logits)
        chosen = logits.argmax(-1)
        keep = []
        for i, (row, tok) in enumerate(zip(alive, chosen.tolist(), strict=True)):
            out[row].append(tok)
            if tok in eos:
                reasons[row] = "stop"
            elif decoding.stop and any(s in tokenizer.decode(out[row][-stop_tail:]) for s in decoding.stop):
                reasons[row] = "stop"
            elif decoding.loop_span and is_loop(out[row], decoding.loop_span):
                reasons[row] = "loop"
            else:
                keep.append(i)
        if not keep or step + 1 == decoding.max_new_tokens:
            break
        if len(keep) < len(alive):
            index = torch.tensor(keep, device=device)
            cache.batch_select_indices(index)
            chosen, attention, positions = chosen[index], attention[index], positions[index]
            seen = seen[index] if seen is not None else None
            alive = [alive[i] for i in keep]
        if seen is not None:
            seen[torch.arange(len(alive), device=device), chosen] = True
        attention = torch.cat([attention, attention.new_ones(len(alive), 1)], dim=1)
        positions = positions + 1
        logits = model(
            input_ids=chosen[:, None], attention_mask=attention, position_ids=positions, past_key_values=cache
        ).logits[:, -1, :]
    completions = []
    for tokens, reason in zip(out, reasons, strict=True):
        kept = tokens[:-1] if tokens and tokens[-1] in eos else tokens
        text, _ = cut_at_stop(tokenizer.decode(kept, skip_special_tokens=True), decoding.stop)
        completions.append(Completion(text=text, finish_reason=reason, n_tokens=len(tokens)))
    return completions


def is_loop(tokens: list[int], span: int) -> bool:
    """Whether the last `span` tokens repeat one block of at most span // 3 tokens (three or more times)."""
    if len(tokens) < span:
        return False
    tail = tokens[-span:]
    return any(tail[p:] == tail[:-p] for p in range(1, span // 3 + 1))
