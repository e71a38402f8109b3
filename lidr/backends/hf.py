"""transformers backend: batched, left-padded greedy decoding that stops at end of turn.

`greedy_decode` is our own decoding loop rather than `model.generate`: the same greedy choice
(argmax after the repetition penalty over the prompt and the tokens so far), but a row that
ends (end of turn, stop string, a detected loop, the token limit) leaves the batch at once, so
the batch does not run on at full width for its longest member; when more prompts are handed
over than `batch_size` rows (`chunk_size` > `batch_size`), a waiting prompt takes its place.
Pad tokens are never penalised or attended to, so a row's output does not depend on its batch
neighbours' lengths. While few rows run, each also checks tokens guessed by prompt lookup
(`draft_tokens`), keeping those greedy decoding picks. Prompts admitted together run the first
tokens they share (the chat template's) once. On CPU, `cpu_kernels` swaps in linear and attention
kernels that are faster for a few rows, with weights packed once for oneDNN.
"""

from __future__ import annotations

import contextlib
import os
import types
import weakref

import torch
import torch.nn.functional as F
from transformers import AttentionInterface, DynamicCache
from transformers.cache_utils import DynamicLayer
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

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
        self.draft_tokens = params.generation.draft_tokens
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
        with cpu_kernels(self.model):
            return greedy_decode(
                self.model, self.tokenizer, batch, decoding, self.eos_ids, self.batch_size, self.draft_tokens
            )

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


SMALL_ROWS = 16  # unpacked: up to this many rows, a linear layer multiplies weight @ input.T
PACKED_SMALL_ROWS = 7  # packed: up to this many rows, still weight @ input.T (but the output layer)
ONEDNN_ROWS = 128  # up to this many, oneDNN (on the packed weight where there is one); above, torch's own
PACKED_ROWS_HINT = 16  # the number of rows oneDNN lays packed weights out for
PACK_LIMIT_BYTES = 1 << 30  # pack a model's linear weights only while their copies take no more memory


def _small_batch_linear(self: torch.nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """`F.linear` with the kernel that is fastest on CPU for the number of rows of `x`, where the
    weights are not packed (see `cpu_kernels`).

    A decoding step multiplies each weight by a handful of rows, where MKL's sgemm (what
    `F.linear` calls on x86 CPUs) is slow: `python -m benchmarks.linear_kernels` times each kernel
    per layer shape and number of rows. All compute the same sums
    in another order, so the results agree to float rounding, as between batch sizes.
    """
    rows = x.numel() // x.shape[-1]
    if rows <= SMALL_ROWS:
        return _weight_times_rows(self, x, rows)
    if rows <= ONEDNN_ROWS and _HAS_ONEDNN_LINEAR:
        return torch.ops.mkldnn._linear_pointwise(x, self.weight, self.bias, "none", [], "")
    return F.linear(x, self.weight, self.bias)


def _packed_linear(self: torch.nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """`_small_batch_linear` for a layer with a packed copy of its weight (see `cpu_kernels`).

    oneDNN on a weight reordered once into its blocked layout beats the other kernels from 8 rows
    on, and at any number of rows for the output layer, which `cpu_kernels` binds to `_output_linear`:
    whole decoding steps of the embedded model took 112 instead of 137-155 ms at 10-14 rows
    (`benchmarks.linear_kernels` has the per-layer numbers).
    """
    rows = x.numel() // x.shape[-1]
    if rows <= PACKED_SMALL_ROWS:
        return _weight_times_rows(self, x, rows)
    return _output_linear(self, x)


def _output_linear(self: torch.nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """oneDNN on the packed copy of the weight up to ONEDNN_ROWS rows; torch's own kernel above."""
    if x.numel() // x.shape[-1] > ONEDNN_ROWS:
        return F.linear(x, self.weight, self.bias)
    return torch.ops.mkldnn._linear_pointwise(x, _packed_weight(self), self.bias, "none", [], "")


def _weight_times_rows(self: torch.nn.Linear, x: torch.Tensor, rows: int) -> torch.Tensor:
    y = torch.mm(self.weight, x.reshape(rows, x.shape[-1]).t()).t()
    if self.bias is not None:
        y = y + self.bias
    return y.reshape(*x.shape[:-1], y.shape[-1])


_HAS_ONEDNN_LINEAR = torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")
_HAS_ONEDNN_PACKING = _HAS_ONEDNN_LINEAR and hasattr(torch.ops.mkldnn, "_reorder_linear_weight")
_packed: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # layer -> (its weight's identity, packed copy)


def _packed_weight(layer: torch.nn.Linear) -> torch.Tensor:
    """The layer's weight in oneDNN's blocked layout: made at first use, remade if the weight changes."""
    weight = layer.weight
    identity = (weight.data_ptr(), -1 if weight.is_inference() else weight._version, tuple(weight.shape))
    held = _packed.get(layer)
    if held is None or held[0] != identity:
        held = (identity, torch.ops.mkldnn._reorder_linear_weight(weight.detach(), PACKED_ROWS_HINT))
        _packed[layer] = held
    return held[1]


def _grouped_attention(module, query, key, value, attention_mask, dropout=0.0, scaling=None, is_causal=None, **kwargs):
    """Attention for a decoding step on CPU, each key/value head read once by its group of query heads.

    transformers' sdpa path copies the cache of each key/value head once per query head of its
    group (`repeat_kv`) whenever a mask is given, which decoding with padding always has, and torch
    then falls back to its slowest kernel: with the embedded model, 12 rows, 300-token prompts, a
    step took 251 ms through that path and 175 ms through this one.
    Longer inputs (prefill) and unmasked causal ones go to the sdpa path unchanged.
    """
    b, h, t, d = query.shape
    if t > SMALL_ROWS or (attention_mask is None and t > 1) or dropout:
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, scaling=scaling, is_causal=is_causal, **kwargs
        )
    groups = h // key.shape[1]
    q = query.reshape(b, key.shape[1], groups * t, d)  # the query heads of a key/value head are consecutive
    scores = torch.matmul(q, key.transpose(-1, -2)).mul_(d**-0.5 if scaling is None else scaling)
    if attention_mask is not None:
        length = attention_mask.shape[-1]
        mask = attention_mask[:, :, None].expand(b, 1, groups, t, length).reshape(b, 1, groups * t, length)
        # the lowest finite value, not -inf: a query that attends to nothing (a padding position) gets
        # uniform weights instead of NaN, which would reach every row through the cache
        low = torch.finfo(scores.dtype).min
        scores = scores.masked_fill_(~mask, low) if mask.dtype == torch.bool else scores.add_(mask).clamp_(min=low)
    probs = torch.softmax(scores, dim=-1, dtype=torch.float32).to(value.dtype)
    return torch.matmul(probs, value).reshape(b, h, t, d).transpose(1, 2).contiguous(), None


AttentionInterface.register("lidr_cpu", _grouped_attention)
AttentionMaskInterface.register("lidr_cpu", sdpa_mask)
GROUPED_ATTENTION_MODELS = ("llama", "qwen2")  # plain softmax attention: no soft-capping, sinks or windows


@contextlib.contextmanager
def cpu_kernels(model):
    """While inside, the float32 CPU linear layers of `model` use the kernels above, and its attention
    `_grouped_attention` (llama and qwen2 models on sdpa); the same sums in another order.

    Where oneDNN can pack weights and the model's linear weights take at most PACK_LIMIT_BYTES,
    each layer gets a packed copy at its first use (kept while the model lives and the weight is
    unchanged, so later calls reuse it): the embedded model's 540 MB once more.
    """
    cpu = model.device.type == "cpu"
    swapped = [
        m
        for m in model.modules()
        if cpu and type(m) is torch.nn.Linear and m.weight.dtype == torch.float32 and "forward" not in m.__dict__
    ]
    attention = model.config._attn_implementation
    grouped = cpu and attention == "sdpa" and model.config.model_type in GROUPED_ATTENTION_MODELS
    size = sum(m.weight.numel() * m.weight.element_size() for m in {id(m.weight): m for m in swapped}.values())
    pack = _HAS_ONEDNN_PACKING and size <= PACK_LIMIT_BYTES
    output = model.get_output_embeddings()
    for m in swapped:
        kernel = (_output_linear if m is output else _packed_linear) if pack else _small_batch_linear
        m.forward = types.MethodType(kernel, m)
    if grouped:
        model.set_attn_implementation("lidr_cpu")
    try:
        yield
    finally:
        for m in swapped:
            del m.forward
        if grouped:
            model.set_attn_implementation(attention)


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


DRAFT_ROWS = 16  # draft only while rows x (1 + draft tokens) stays within this many tokens per step


def greedy_decode(
    model,
    tokenizer,
    batch: list[list[int]],
    decoding: Decoding,
    eos_ids: list[int],
    max_running: int | None = None,
    draft: int = 0,
) -> list[Completion]:
    """Greedy completions of the token-id prompts in `batch`, in order.

    At most `max_running` rows decode together (default: all). A row that ends leaves the batch
    at once, and waiting prompts take the free places (continuous batching): they are prefilled
    on their own, left-padded to the running batch's cache length, and joined to it. Every row
    keeps its own positions and attention mask, so its output does not depend on its neighbours.

    With `draft` > 0, while few rows run, each row also feeds up to `draft` tokens guessed by
    prompt lookup (what followed the last earlier occurrence of its last few tokens, in its
    prompt or its output) and keeps those that greedy decoding picks itself, so one forward pass
    can yield several tokens; a guess is only ever kept when it is the greedy choice, so the
    output is the same. Rejected guesses stay in the cache as masked holes, squeezed out when
    they fill half of it.
    """
    pad = tokenizer.pad_token_id
    max_running = max_running or len(batch)
    if not isinstance(_new_cache(model).layers[0], _RoomyLayer):
        max_running, draft = len(batch), 0  # sliding-window or other caches: one batch of all rows, no guesses
    eos = set(eos_ids)
    stop_tail = max((len(s) for s in decoding.stop), default=0) + 2  # tokens enough to hold any stop string
    out: list[list[int]] = [[] for _ in batch]
    reasons: list[str] = ["length"] * len(batch)
    lookups = [_Lookup(ids) if draft else None for ids in batch]

    def ended(row: int) -> bool:
        tokens = out[row]
        if tokens[-1] in eos:
            reasons[row] = "stop"
        elif decoding.stop and any(s in tokenizer.decode(tokens[-stop_tail:]) for s in decoding.stop):
            reasons[row] = "stop"
        elif decoding.loop_span and is_loop(tokens, decoding.loop_span):
            reasons[row] = "loop"
        else:
            return len(tokens) >= decoding.max_new_tokens
        return True

    def choose(run: _Running) -> _Running | None:
        """Append each row's greedy tokens (its first, then the guesses it confirms); drop rows that end."""
        penalty = decoding.repetition_penalty
        accepted, keep, nexts = [0] * len(run.rows), [], [0] * len(run.rows)
        active = list(range(len(run.rows)))
        for j in range(run.logits.shape[1]):
            index = torch.tensor(active, device=run.logits.device)
            logits = run.logits[index, j].float()
            if run.seen is not None:
                seen = run.seen[index]
                logits = torch.where(seen, torch.where(logits < 0, logits * penalty, logits / penalty), logits)
            still = []
            for i, tok in zip(active, logits.argmax(-1).tolist(), strict=True):
                row = run.rows[i]
                out[row].append(tok)
                if run.seen is not None:
                    run.seen[i, tok] = True
                if lookups[row] is not None:
                    lookups[row].append(tok)
                if ended(row):
                    continue
                if j < len(run.drafts[i]) and run.drafts[i][j] == tok:
                    accepted[i] += 1  # the guess was fed: the next column's logits follow it
                    still.append(i)
                else:
                    nexts[i] = tok
                    keep.append(i)
            active = still
            if not active:
                break
        run.settle(accepted)
        if not keep:
            return None
        keep.sort()
        run.select(keep, torch.tensor([nexts[i] for i in keep]))
        return run

    waiting = list(range(len(batch)))[::-1]  # popped from the end: admitted in the given order
    refill = max(1, max_running // 4)  # join waiting prompts once this many places are free (or none run)
    run: _Running | None = None
    while waiting or run is not None:
        if run is not None:
            run = choose(run)
        free = max_running - (len(run.rows) if run else 0)
        if waiting and free >= min(refill, len(waiting)):
            admitted = [waiting.pop() for _ in range(min(free, len(waiting)))]
            new = choose(_prefill(model, [batch[i] for i in admitted], admitted, pad, decoding.repetition_penalty))
            run = new if run is None or new is None else run.join(new)
        if run is None:
            continue
        width = min(draft, DRAFT_ROWS // len(run.rows) - 1)
        guesses = [
            lookups[row].draft(min(width, decoding.max_new_tokens - len(out[row]) - 1)) if width > 0 else []
            for row in run.rows
        ]
        run.step(model, guesses, pad)
    completions = []
    for tokens, reason in zip(out, reasons, strict=True):
        kept = tokens[:-1] if tokens and tokens[-1] in eos else tokens
        text, _ = cut_at_stop(tokenizer.decode(kept, skip_special_tokens=True), decoding.stop)
        completions.append(Completion(text=text, finish_reason=reason, n_tokens=len(tokens)))
    return completions


class _Lookup:
    """Prompt-lookup guesses for one row: the tokens that followed the latest earlier occurrence of
    its last 3 (else 2, else 1) tokens, in its prompt and output so far."""

    n = 3

    def __init__(self, tokens: list[int]):
        self.tokens: list[int] = []
        self.after: dict[tuple[int, ...], int] = {}  # n-gram -> index just after its latest non-final occurrence
        for tok in tokens:
            self.append(tok)

    def append(self, tok: int) -> None:
        end = len(self.tokens)
        for n in range(1, min(self.n, end) + 1):
            self.after[tuple(self.tokens[end - n : end])] = end
        self.tokens.append(tok)

    def draft(self, k: int) -> list[int]:
        if k <= 0:
            return []
        for n in range(min(self.n, len(self.tokens)), 0, -1):
            start = self.after.get(tuple(self.tokens[-n:]))
            if start is not None:
                return self.tokens[start : start + k]
        return []


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
    """The rows decoding together: their KV cache, attention mask, last positions and last logits.

    `logits` holds, per row, one column per token fed in the last forward pass: the row's next
    token and its `drafts` (guesses), padded to the longest; `positions` the position of each
    row's last fed token."""

    slack = 32  # cache columns beyond twice the longest row's before masked holes are squeezed out

    def __init__(self, rows, cache, attention, positions, logits, seen):
        self.rows, self.cache, self.attention, self.positions = rows, cache, attention, positions
        self.logits, self.seen = logits, seen  # seen: vocabulary entries each row has seen (repetition penalty)
        self.drafts: list[list[int]] = [[] for _ in rows]
        self.next: torch.Tensor | None = None

    def settle(self, accepted: list[int]) -> None:
        """Of the tokens fed last, keep each row's next token and its first `accepted` guesses: mask the rest."""
        fed = self.logits.shape[1]
        if fed == 1:
            return
        accepted_t = torch.tensor(accepted, device=self.positions.device)
        self.positions = self.positions - (fed - 1 - accepted_t)[:, None]
        block = torch.arange(fed, device=self.attention.device)[None, :] <= accepted_t[:, None]
        self.attention[:, -fed:] = block.to(self.attention.dtype)

    def select(self, keep: list[int], chosen: torch.Tensor) -> None:
        """Keep rows `keep`, each to be fed its chosen token next; cut cache columns no row attends to."""
        chosen = chosen.to(self.attention.device)
        if len(keep) < len(self.rows):
            index = torch.tensor(keep, device=chosen.device)
            self.cache.batch_select_indices(index)
            self.attention, self.positions = self.attention[index], self.positions[index]
            self.seen = self.seen[index] if self.seen is not None else None
            self.rows = [self.rows[i] for i in keep]
            unused = int(self.attention.any(0).int().argmax())  # leading columns that are padding in every row
            if unused and isinstance(self.cache.layers[0], _RoomyLayer):
                self.attention = self.attention[:, unused:]
                for layer in self.cache.layers:
                    layer.set(layer.keys[:, :, unused:], layer.values[:, :, unused:])
        if isinstance(self.cache.layers[0], _RoomyLayer):
            self._squeeze()
        self.next = chosen
        self.logits, self.drafts = None, [[] for _ in self.rows]

    def _squeeze(self) -> None:
        """Move each row's attended columns to the end of the cache once masked holes fill half of it."""
        width = int(self.attention.sum(1).max())
        if self.attention.shape[1] < 2 * width + self.slack:
            return
        # a stable sort puts each row's masked columns first and its attended ones after, in order
        index = torch.sort(self.attention.int(), dim=1, stable=True).indices[:, -width:]
        self.attention = torch.gather(self.attention, 1, index)
        for layer in self.cache.layers:
            b, h, _, d = layer.keys.shape
            gather = index[:, None, :, None].expand(b, h, width, d)
            layer.set(torch.gather(layer.keys, 2, gather), torch.gather(layer.values, 2, gather))

    def step(self, model, drafts: list[list[int]], pad: int) -> None:
        """Feed each row its next token and its guesses (padded and masked to the longest)."""
        fed = 1 + max(len(d) for d in drafts)
        ids = [[tok] + d + [pad] * (fed - 1 - len(d)) for tok, d in zip(self.next.tolist(), drafts, strict=True)]
        mask = [[1] * (1 + len(d)) + [0] * (fed - 1 - len(d)) for d in drafts]
        device = self.attention.device
        self.attention = torch.cat([self.attention, torch.tensor(mask, dtype=self.attention.dtype, device=device)], 1)
        positions = self.positions + 1 + torch.arange(fed, device=device)[None, :]
        self.logits = model(
            input_ids=torch.tensor(ids, device=device),
            attention_mask=self.attention,
            position_ids=positions,
            past_key_values=self.cache,
        ).logits
        self.positions, self.drafts = positions[:, -1:], drafts

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
        self.next = torch.cat([self.next, other.next])
        self.seen = torch.cat([self.seen, other.seen]) if self.seen is not None else None
        self.rows = self.rows + other.rows
        self.drafts = self.drafts + other.drafts
        return self


SHARED_PREFIX_MIN = 128  # prompt tokens a shared prefix must save (its length x other rows) to be run once


def _shared_prefix(prompts: list[list[int]]) -> int:
    """How many first tokens the prompts share and run once: 0 unless that saves SHARED_PREFIX_MIN
    tokens; never a whole prompt, whose last token must run to give the row's first logits."""
    shared = min(len(os.path.commonprefix(prompts)), min(len(ids) for ids in prompts) - 1)
    return shared if shared * (len(prompts) - 1) >= SHARED_PREFIX_MIN else 0


def _prefill(model, prompts: list[list[int]], rows: list[int], pad: int, penalty: float) -> _Running:
    """Run the prompts through the model: a running batch whose next tokens are to be chosen.

    Prompts built from one template share their first tokens (chat template, system prompt,
    instruction). When that prefix is long enough, it runs once, at one row, and its cache is
    copied to every row; then only the rest of each prompt runs, left-padded after the prefix
    (cache columns: prefix, padding, the prompt's own tokens), each row at its own positions.
    """
    device, cache = model.device, _new_cache(model)
    shared = _shared_prefix(prompts) if isinstance(cache.layers[0], _RoomyLayer) else 0
    if shared:
        model(
            input_ids=torch.tensor([prompts[0][:shared]], device=device),
            position_ids=torch.arange(shared, device=device)[None],
            past_key_values=cache,
            logits_to_keep=1,
        )
        for layer in cache.layers:
            b, h, length, d = layer.keys.shape
            layer.set(layer.keys.expand(len(prompts), h, length, d), layer.values.expand(len(prompts), h, length, d))
    rest = [ids[shared:] for ids in prompts]
    width = max(len(ids) for ids in rest)
    input_ids = torch.tensor([[pad] * (width - len(ids)) + ids for ids in rest], device=device)
    attention = torch.tensor([[1] * shared + [0] * (width - len(ids)) + [1] * len(ids) for ids in rest], device=device)
    positions = (attention.cumsum(-1) - 1).clamp(min=0)[:, shared:]  # padding must not shift positions
    logits = model(
        input_ids=input_ids, attention_mask=attention, position_ids=positions, past_key_values=cache, logits_to_keep=1
    ).logits
    seen = None
    if penalty != 1.0:  # each row's prompt (not its padding) counts as seen
        seen = torch.zeros((len(prompts), logits.shape[-1]), dtype=torch.bool, device=device)
        for i, ids in enumerate(prompts):
            seen[i, torch.tensor(ids, device=device)] = True
    return _Running(list(rows), cache, attention, positions[:, -1:], logits, seen)


def is_loop(tokens: list[int], span: int) -> bool:
    """Whether the last `span` tokens repeat one block of at most span // 3 tokens (three or more times)."""
    if len(tokens) < span:
        return False
    tail = tokens[-span:]
    return any(tail[p:] == tail[:-p] for p in range(1, span // 3 + 1))
