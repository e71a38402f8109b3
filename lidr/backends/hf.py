"""transformers backend: batched, left-padded greedy decoding that stops at end of turn.

`greedy_decode` is our own decoding loop rather than `model.generate`: the same greedy choice
(argmax after the repetition penalty over the prompt and the tokens so far), but a row that
ends (end of turn, stop string, a detected loop, the token limit) leaves the batch at once, so
the batch does not run on at full width for its longest member; when more prompts are handed
over than `batch_size` rows (`chunk_size` > `batch_size`), a waiting prompt takes its place.
Pad tokens are never penalised or attended to, so a row's output does not depend on its batch
neighbours' lengths.
"""

from __future__ import annotations

import torch
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

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
        self.chunk_size = params.generation.chunk_size
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
        return greedy_decode(self.model, self.tokenizer, batch, decoding, self.eos_ids, self.batch_size)

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
    model,
    tokenizer,
    batch: list[list[int]],
    decoding: Decoding,
    eos_ids: list[int],
    max_running: int | None = None,
) -> list[Completion]:
    """Greedy completions of the token-id prompts in `batch`, in order.

    At most `max_running` rows decode together (default: all). A row that ends leaves the batch
    at once, and waiting prompts take the free places (continuous batching): they are prefilled
    on their own, left-padded to the running batch's cache length, and joined to it. Every row
    keeps its own positions and attention mask, so its output does not depend on its neighbours.
    """
    pad = tokenizer.pad_token_id
    max_running = max_running or len(batch)
    if not isinstance(_new_cache(model).layers[0], _RoomyLayer):
        max_running = len(batch)  # sliding-window or other caches: no joining, one batch of all rows
    eos = set(eos_ids)
    stop_tail = max((len(s) for s in decoding.stop), default=0) + 2  # tokens enough to hold any stop string
    out: list[list[int]] = [[] for _ in batch]
    reasons: list[str] = ["length"] * len(batch)
    waiting = list(range(len(batch)))[::-1]  # popped from the end: admitted in the given order
    refill = max(1, max_running // 4)  # join waiting prompts once this many places are free (or none run)
    run: _Running | None = None
    while waiting or run is not None:
        free = max_running - (len(run.rows) if run else 0)
        if waiting and free >= min(refill, len(waiting)):
            admitted = [waiting.pop() for _ in range(min(free, len(waiting)))]
            new = _prefill(model, [batch[i] for i in admitted], admitted, pad, decoding.repetition_penalty)
            run = new if run is None else run.join(new)
        logits = run.logits.float()
        if run.seen is not None:
            penalty = decoding.repetition_penalty
            logits = torch.where(run.seen, torch.where(logits < 0, logits * penalty, logits / penalty), logits)
        chosen = logits.argmax(-1)
        keep = []
        for i, (row, tok) in enumerate(zip(run.rows, chosen.tolist(), strict=True)):
            out[row].append(tok)
            if tok in eos:
                reasons[row] = "stop"
            elif decoding.stop and any(s in tokenizer.decode(out[row][-stop_tail:]) for s in decoding.stop):
                reasons[row] = "stop"
            elif decoding.loop_span and is_loop(out[row], decoding.loop_span):
                reasons[row] = "loop"
            elif len(out[row]) < decoding.max_new_tokens:
                keep.append(i)
        if not keep:
            run = None
            continue
        run.select(keep, chosen)
        run.step(model)
    completions = []
    for tokens, reason in zip(out, reasons, strict=True):
        kept = tokens[:-1] if tokens and tokens[-1] in eos else tokens
        text, _ = cut_at_stop(tokenizer.decode(kept, skip_special_tokens=True), decoding.stop)
        completions.append(Completion(text=text, finish_reason=reason, n_tokens=len(tokens)))
    return completions


class _RoomyLayer(DynamicLayer):
    """A DynamicLayer whose keys and values are views of buffers with spare room at the end.

    DynamicLayer concatenates the whole cache to add one token, a copy per layer and step
    that costs a fifth to a third of a decoding step at 64 rows; here a token is written in place.
    """

    spare = 64  # tokens of room added at each reallocation

    def update(self, key_states, value_states, *args, **kwargs):
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
            self.set(key_states, value_states)
            return self.keys, self.values
        n, length = key_states.shape[-2], self.keys.shape[-2]
        if length + n > self._keys.shape[-2]:
            self.set(self.keys, self.values, room=n + self.spare)
        self._keys[:, :, length : length + n] = key_states
        self._values[:, :, length : length + n] = value_states
        self.keys, self.values = self._keys[:, :, : length + n], self._values[:, :, : length + n]
        return self.keys, self.values

    def set(self, keys: torch.Tensor, values: torch.Tensor, room: int | None = None) -> None:
        """Hold copies of `keys` and `values` with `room` free positions after them."""
        b, h, length, d = keys.shape
        room = self.spare if room is None else room
        self._keys = keys.new_empty((b, h, length + room, d))
        self._values = values.new_empty((b, h, length + room, d))
        self._keys[:, :, :length], self._values[:, :, :length] = keys, values
        self.keys, self.values = self._keys[:, :, :length], self._values[:, :, :length]

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        self.set(self.keys[indices], self.values[indices])


def _new_cache(model) -> DynamicCache:
    """A cache of roomy layers where the model's own would be plain DynamicLayers, else the model's own."""
    cache = DynamicCache(config=model.config)
    if all(type(layer) is DynamicLayer for layer in cache.layers):
        cache.layers = [_RoomyLayer() for _ in cache.layers]
    return cache


class _Running:
    """The rows decoding together: their KV cache, attention mask, next positions and last logits."""

    def __init__(self, rows, cache, attention, positions, logits, seen):
        self.rows, self.cache, self.attention, self.positions = rows, cache, attention, positions
        self.logits, self.seen = logits, seen  # seen: vocabulary entries each row has seen (repetition penalty)
        self.next: torch.Tensor | None = None

    def select(self, keep: list[int], chosen: torch.Tensor) -> None:
        """Keep rows `keep`, each to be fed its chosen token next; cut cache columns no row attends to."""
        if len(keep) < len(self.rows):
            index = torch.tensor(keep, device=chosen.device)
            self.cache.batch_select_indices(index)
            chosen, self.attention, self.positions = chosen[index], self.attention[index], self.positions[index]
            self.seen = self.seen[index] if self.seen is not None else None
            self.rows = [self.rows[i] for i in keep]
            unused = int(self.attention.any(0).int().argmax())  # leading columns that are padding in every row
            if unused and isinstance(self.cache.layers[0], _RoomyLayer):
                self.attention = self.attention[:, unused:]
                for layer in self.cache.layers:
                    layer.set(layer.keys[:, :, unused:], layer.values[:, :, unused:])
        if self.seen is not None:
            self.seen[torch.arange(len(self.rows), device=chosen.device), chosen] = True
        self.next = chosen

    def step(self, model) -> None:
        self.attention = torch.cat([self.attention, self.attention.new_ones(len(self.rows), 1)], dim=1)
        self.positions = self.positions + 1
        self.logits = model(
            input_ids=self.next[:, None],
            attention_mask=self.attention,
            position_ids=self.positions,
            past_key_values=self.cache,
        ).logits[:, -1, :]

    def join(self, other: _Running) -> _Running:
        """One running batch of both: the shorter cache is left-padded (masked) to the longer one's length."""
        width = max(self.attention.shape[1], other.attention.shape[1])

        def left_pad(t: torch.Tensor, dim: int) -> torch.Tensor:
            missing = width - t.shape[dim]
            if not missing:
                return t
            shape = list(t.shape)
            shape[dim] = missing
            return torch.cat([t.new_zeros(shape), t], dim=dim)

        for mine, theirs in zip(self.cache.layers, other.cache.layers, strict=True):
            mine.set(
                torch.cat([left_pad(mine.keys, 2), left_pad(theirs.keys, 2)]),
                torch.cat([left_pad(mine.values, 2), left_pad(theirs.values, 2)]),
            )
        self.attention = torch.cat([left_pad(self.attention, 1), left_pad(other.attention, 1)])
        self.positions = torch.cat([self.positions, other.positions])
        self.logits = torch.cat([self.logits, other.logits])
        self.seen = torch.cat([self.seen, other.seen]) if self.seen is not None else None
        self.rows = self.rows + other.rows
        return self


def _prefill(model, prompts: list[list[int]], rows: list[int], pad: int, penalty: float) -> _Running:
    """Run the prompts (left-padded) through the model: a running batch whose next tokens are to be chosen."""
    device = model.device
    width = max(len(ids) for ids in prompts)
    input_ids = torch.tensor([[pad] * (width - len(ids)) + ids for ids in prompts], device=device)
    attention = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in prompts], device=device)
    positions = (attention.cumsum(-1) - 1).clamp(min=0)
    cache = _new_cache(model)
    logits = model(
        input_ids=input_ids, attention_mask=attention, position_ids=positions, past_key_values=cache, logits_to_keep=1
    ).logits[:, -1, :]
    seen = None
    if penalty != 1.0:  # each row's prompt (not its padding) counts as seen
        seen = torch.zeros(logits.shape, dtype=torch.bool, device=device)
        seen[attention.nonzero(as_tuple=True)[0], input_ids[attention.bool()]] = True
    return _Running(list(rows), cache, attention, positions[:, -1:], logits, seen)


def is_loop(tokens: list[int], span: int) -> bool:
    """Whether the last `span` tokens repeat one block of at most span // 3 tokens (three or more times)."""
    if len(tokens) < span:
        return False
    tail = tokens[-span:]
    return any(tail[p:] == tail[:-p] for p in range(1, span // 3 + 1))
