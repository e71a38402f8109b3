"""GPU check: a few DPO + NLL steps in bf16 on a model with Llama-3-8B's layer shapes but few layers.

The model is built from a config (hidden 4096, intermediate 14336, 32 heads, 8 KV heads, vocab 128256;
random weights, nothing downloaded). Each step runs the policy on chosen + rejected, the frozen
reference without gradients, and `lidr.dpo_loss.dpo_nll_loss` (the loss the trainer uses), then AdamW.
Needs only torch and transformers. Prints tokens/s, peak GPU memory and model FLOPs utilisation (MFU).

    python benchmarks/gpu_check.py                 # on a GPU: 4 layers, 4 pairs x 1024 tokens, 8 steps
    python benchmarks/gpu_check.py --tiny          # a tiny float32 model on the CPU, to test the script
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from lidr.dpo_loss import dpo_nll_loss, sequence_logps  # noqa: E402

LLAMA3_8B = dict(
    hidden_size=4096,
    intermediate_size=14336,
    num_attention_heads=32,
    num_key_value_heads=8,
    vocab_size=128256,
    rope_theta=500000.0,
    max_position_embeddings=8192,
)
TINY = dict(
    hidden_size=64,
    intermediate_size=128,
    num_attention_heads=4,
    num_key_value_heads=2,
    vocab_size=1000,
    max_position_embeddings=512,
)
PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0}  # dense, SXM


def build(layers: int, shapes: dict, dtype, device):
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(num_hidden_layers=layers, **shapes)
    config._attn_implementation = "sdpa"
    torch.manual_seed(0)
    with torch.device(device):
        model = LlamaForCausalLM(config).to(dtype)
    return model, config


def random_batch(pairs: int, seq: int, vocab: int, device):
    """[chosen..., rejected...] with a shared prompt of seq/4 tokens and responses of different lengths."""
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, vocab, (2 * pairs, seq), generator=g)
    mask = torch.zeros(2 * pairs, seq, dtype=torch.long)
    prompt = seq // 4
    for row in range(2 * pairs):
        end = seq - (row * 7) % (seq // 4)  # differing response lengths, all within the window
        mask[row, prompt:end] = 1
    ids[pairs:, :prompt] = ids[:pairs, :prompt]
    return ids.to(device), mask.to(device)


def per_token_logps(model, ids):
    logits = model(input_ids=ids, use_cache=False).logits[:, :-1].float()
    return torch.log_softmax(logits, -1).gather(-1, ids[:, 1:, None])[..., 0]


def step_flops(config, tokens: int, seq: int) -> float:
    """Model FLOPs of one step: policy forward + backward (6 per weight and token), reference forward (2), plus the
    attention scores (QK^T and AV: 4 * layers * hidden * seq per token forward, tripled for forward + backward)."""
    h, i, layers, v = config.hidden_size, config.intermediate_size, config.num_hidden_layers, config.vocab_size
    kv = h * config.num_key_value_heads // config.num_attention_heads
    n = layers * (2 * h * h + 2 * h * kv + 3 * h * i) + v * h  # matmul weights: layers and the LM head
    attention = 4 * layers * h * seq
    return tokens * (6 * n + 2 * n + 3 * attention + attention)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tiny", action="store_true", help="tiny float32 model on the CPU (tests the script)")
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--pairs", type=int, default=4, help="preference pairs per step")
    ap.add_argument("--seq", type=int, default=1024, help="tokens per sequence (prompt + response)")
    ap.add_argument("--steps", type=int, default=8, help="timed steps, after 2 warm-up steps")
    ap.add_argument("--beta", type=float, default=0.5)
    ap.add_argument("--alpha", type=float, default=1.0)
    ap.add_argument("--peak-tflops", type=float, default=None, help="peak dense bf16 TFLOP/s of the GPU")
    args = ap.parse_args(argv)

    cuda = torch.cuda.is_available() and not args.tiny
    device = "cuda" if cuda else "cpu"
    dtype = torch.bfloat16 if cuda else torch.float32
    if args.tiny:
        args.layers, args.pairs, args.seq, args.steps = 2, 2, 64, 2
    policy, config = build(args.layers, TINY if args.tiny else LLAMA3_8B, dtype, device)
    reference = copy.deepcopy(policy).eval().requires_grad_(False)
    policy.train()
    optim = torch.optim.AdamW(policy.parameters(), lr=1e-6, fused=cuda)
    ids, mask = random_batch(args.pairs, args.seq, config.vocab_size, device)
    tokens = ids.numel()

    def step():
        with torch.no_grad():
            ref_logps, _ = sequence_logps(per_token_logps(reference, ids), mask[:, 1:])
        logps, lengths = sequence_logps(per_token_logps(policy, ids), mask[:, 1:])
        (c, r), (rc, rr) = logps.chunk(2), ref_logps.chunk(2)
        out = dpo_nll_loss(c, r, rc, rr, lengths.chunk(2)[0], args.beta, args.alpha)
        out.loss.backward()
        optim.step()
        optim.zero_grad(set_to_none=True)
        return out

    for _ in range(2):
        step()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    for _ in range(args.steps):
        out = step()
    if cuda:
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - started) / args.steps
    name = torch.cuda.get_device_name() if cuda else "cpu"
    peak = args.peak_tflops or next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)
    flops = step_flops(config, tokens, args.seq)
    result = {
        "device": name,
        "dtype": str(dtype).removeprefix("torch."),
        "layers": args.layers,
        "parameters": sum(p.numel() for p in policy.parameters()),
        "pairs_per_step": args.pairs,
        "tokens_per_step": tokens,
        "seconds_per_step": round(seconds, 4),
        "tokens_per_s": round(tokens / seconds, 1),
        "peak_gpu_memory_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if cuda else None,
        "model_tflops_per_s": round(flops / seconds / 1e12, 2),
        "mfu": round(flops / seconds / (peak * 1e12), 4) if peak and cuda else None,
        "loss": round(out.loss.item(), 4),
        "nll": round(out.nll.item(), 4),
        "dpo": round(out.dpo.item(), 4),
    }
    for k, v in result.items():
        print(f"{k:>22}: {v}")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
