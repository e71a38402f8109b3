"""The transformers backend's greedy decoding loop: batched, left-padded, rows leave as they end.

`greedy_decode` is our own decoding loop rather than `model.generate`: the same greedy choice
(argmax after the repetition penalty over the prompt and the tokens so far), but a row that
ends (end of turn, stop string, a detected loop, the token limit) leaves the batch at once, so
the batch does not run on at full width for its longest member; when more prompts are handed
over than `max_running` rows, a waiting prompt takes its place. Prompts are prefilled in groups of
similar length, each within `prefill_tokens` padded tokens, so that a few long prompts do not pad a
whole batch to their length (attention's cost grows with the square of it). Pad tokens are never penalised
or attended to, so a row's output does not depend on its batch neighbours' lengths, up to the last bits of
floating point: the padding beside a row changes the shapes of the sums, and where two tokens are nearly
tied, greedy decoding can pick the other (docs/generation.md). While few rows run, each also checks
tokens guessed by prompt lookup (`draft`), keeping those greedy decoding picks. The KV cache writes each
new token into spare room instead of concatenating.
"""

from __future__ import annotations

import torch
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

from lidr.backends import Completion, Decoding, cut_at_stop

DRAFT_ROWS = 16  # draft only while rows x (1 + draft tokens) stays within this many tokens per step


def greedy_decode(
    model,
    tokenizer,
    batch: list[list[int]],
    decoding: Decoding,
    eos_ids: list[int],
    max_running: int | None = None,
    draft: int = 0,
    prefill_tokens: int = 0,
) -> list[Completion]:
    """Greedy completions of the token-id prompts in `batch`, in order.

    At most `max_running` rows decode together (default: all). A row that ends leaves the batch
    at once, and waiting prompts take the free places (continuous batching): they are prefilled
    on their own, left-padded to the running batch's cache length, and joined to it. Every row
    keeps its own positions and attention mask, so its output does not depend on its neighbours (up to the
    last bits of floating point, as above).

    With `draft` > 0, while few rows run, each row also feeds up to `draft` tokens guessed by
    prompt lookup (what followed the last earlier occurrence of its last few tokens, in its
    prompt or its output) and keeps those that greedy decoding picks itself, so one forward pass
    can yield several tokens; a guess is only ever kept when it is the greedy choice, so the
    output is the same. Rejected guesses stay in the cache as masked holes, squeezed out when
    they fill half of it.

    With `prefill_tokens` > 0, the prompts admitted together are prefilled in consecutive groups
    of at most that many tokens, padding included (`prefill_groups`; a longer prompt is a group of
    its own), and the groups joined into one running batch; 0: one forward pass for all of them.
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
            for group in prefill_groups([len(batch[i]) for i in admitted], prefill_tokens):
                rows = [admitted[k] for k in group]
                new = choose(_prefill(model, [batch[i] for i in rows], rows, pad, decoding.repetition_penalty))
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

    DynamicLayer concatenates the whole cache to add one token, a copy per layer and step;
    here a token is written in place.
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


def prefill_groups(lengths: list[int], budget: int) -> list[list[int]]:
    """Consecutive groups of the indices of `lengths` whose rows x longest length stays within `budget`
    tokens (a prompt longer than `budget` alone); with `budget` 0, one group of all. Prompts come
    sorted longest first from `lidr.generate`, so a group's rows are of similar length."""
    if not budget:
        return [list(range(len(lengths)))] if lengths else []
    groups: list[list[int]] = []
    width = 0
    for i, n in enumerate(lengths):
        if groups and max(width, n) * (len(groups[-1]) + 1) <= budget:
            groups[-1].append(i)
            width = max(width, n)
        else:
            groups.append([i])
            width = n
    return groups


def _prefill(model, prompts: list[list[int]], rows: list[int], pad: int, penalty: float) -> _Running:
    """Run the prompts through the model, left-padded: a running batch whose next tokens are to be chosen."""
    device, cache = model.device, _new_cache(model)
    width = max(len(ids) for ids in prompts)
    input_ids = torch.tensor([[pad] * (width - len(ids)) + ids for ids in prompts], device=device)
    attention = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in prompts], device=device)
    positions = (attention.cumsum(-1) - 1).clamp(min=0)  # padding must not shift positions
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
