"""CPU kernels for decoding a few rows at a time, swapped into a model only inside `cpu_kernels`.

Linear layers get kernels that are faster than MKL's sgemm for a handful of rows (`weight @ x.T`,
or oneDNN on a copy of the weight packed once into its blocked layout), and llama and qwen2
attention on sdpa gets `_grouped_attention`, which reads each key/value head once for its group of
query heads. All compute the same sums in another order, so the results agree to float rounding,
as between batch sizes. `python -m benchmarks.linear_kernels` times each kernel per layer shape.

Importing this module changes nothing: the attention function is registered with transformers, and
a model's layers rebound, only when `cpu_kernels` turns the kernels on for a CPU model.
"""

from __future__ import annotations

import contextlib
import types
import weakref

import torch
import torch.nn.functional as F
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

SMALL_ROWS = 16  # unpacked: up to this many rows, a linear layer multiplies weight @ input.T
PACKED_SMALL_ROWS = 7  # packed: up to this many rows, still weight @ input.T (but the output layer)
ONEDNN_ROWS = 128  # up to this many, oneDNN (on the packed weight where there is one); above, torch's own
PACKED_ROWS_HINT = 16  # the number of rows oneDNN lays packed weights out for
PACK_LIMIT_BYTES = 1 << 30  # pack a model's linear weights only while their copies take no more memory
ATTENTION = "lidr_cpu"  # the name `_grouped_attention` is registered under with transformers
GROUPED_ATTENTION_MODELS = ("llama", "qwen2")  # plain softmax attention: no soft-capping, sinks or windows


@contextlib.contextmanager
def cpu_kernels(model):
    """While inside, the float32 CPU linear layers of `model` use the kernels below, and its attention
    `_grouped_attention` (llama and qwen2 models on sdpa); the same sums in another order.

    Where oneDNN can pack weights and the model's linear weights take at most PACK_LIMIT_BYTES,
    each layer gets a packed copy at its first use (kept while the model lives and the weight is
    unchanged, so later calls reuse it): the model's linear weights once more in memory.
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
        register_attention()
        model.set_attn_implementation(ATTENTION)
    try:
        yield
    finally:
        for m in swapped:
            del m.forward
        if grouped:
            model.set_attn_implementation(attention)


def register_attention() -> None:
    """Make `_grouped_attention` (with sdpa's mask) known to transformers as ATTENTION, for every model."""
    AttentionInterface.register(ATTENTION, _grouped_attention)
    AttentionMaskInterface.register(ATTENTION, sdpa_mask)


def _small_batch_linear(self: torch.nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """`F.linear` with the kernel that is fastest on CPU for the number of rows of `x`, where the
    weights are not packed.

    A decoding step multiplies each weight by a handful of rows, where MKL's sgemm (what
    `F.linear` calls on x86 CPUs) is slow.
    """
    rows = x.numel() // x.shape[-1]
    if rows <= SMALL_ROWS:
        return _weight_times_rows(self, x, rows)
    if rows <= ONEDNN_ROWS and _HAS_ONEDNN_LINEAR:
        return torch.ops.mkldnn._linear_pointwise(x, self.weight, self.bias, "none", [], "")
    return F.linear(x, self.weight, self.bias)


def _packed_linear(self: torch.nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """`_small_batch_linear` for a layer with a packed copy of its weight.

    oneDNN on a weight reordered once into its blocked layout beats the other kernels from
    PACKED_SMALL_ROWS + 1 rows on, and at any number of rows for the output layer, which
    `cpu_kernels` binds to `_output_linear`.
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
    then falls back to its slowest kernel. Longer inputs (prefill) and unmasked causal ones go to
    the sdpa path unchanged.
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
