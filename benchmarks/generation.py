"""Generation throughput on the pipeline's own kinds of requests, with the embedded model.

A fixed, seeded workload: self-translations of English prompts into the non-dominant languages
(greedy, stop at `</translated>`), answers to general prompts and to MGSM questions in several
languages (greedy, repetition penalty). Each is decoded as the pipeline decodes it, by:

- `naive`: one request at a time, `model.generate` (batch 1);
- `generate`: plain batched `model.generate`, batches in workload order, left padding;
- `sorted-generate`: batched `model.generate` on length-sorted batches (the first backend);
- `static-compile`: plain batched `model.generate` with a static KV cache and its decoding step
  compiled by `torch.compile` (compile time included; not run unless named in `--modes`);
- `continuous`: transformers' own continuous batching, `model.generate_batch` (paged attention;
  it has no stop strings, so a translation runs on after `</translated>` and only its tokens up
  to the stop string are counted);
- `loop`: the project's greedy loop on length-sorted batches where a finished row leaves the
  batch (`chunk_size` = `batch_size`), with torch's own kernels and no guessed tokens: the
  second backend;
- `previous`: the backend as it was before weights were packed for oneDNN (CPU kernels on
  unpacked weights, guesses): the third backend;
- `backend`: the project's backend and driver as params.yaml configures them (`lidr.generate.generate`):
  `batch_size` rows at a time (with `chunk_size` above `batch_size`, a waiting prompt joins as a
  row ends), its CPU kernels, and `draft_tokens` prompt-lookup guesses while few rows run.

Each mode runs in its own process (so peak memory is its own) after the model is loaded, and
prints one table row: generated tokens, tokens/s, requests/s, padding waste (prompt padding plus
decode steps spent on rows that had already finished, as a share of all token slots), wall time,
CPU time (less sensitive than wall time to other work on a shared machine), peak memory (RSS),
and how many outputs equal the naive loop's greedy text (a loop-ended output counts when it is
a prefix of it). "x naive" and "x generate" compare tokens/s.

    python -m benchmarks.generation                 # 16 requests of each kind, every mode but static-compile
    python -m benchmarks.generation --n 4 --modes generate backend   # reduced workload
    python -m benchmarks.generation --modes generate backend --repeats 3   # modes in turn, median run
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

MODES = ("naive", "generate", "sorted-generate", "static-compile", "continuous", "loop", "previous", "backend")
DEFAULT_MODES = tuple(m for m in MODES if m != "static-compile")  # compiling takes minutes: asked for by name
PROJECT_LOOP = ("loop", "previous", "backend")
ROOT = Path(__file__).resolve().parent.parent


def workload(params, n: int, seed: int):
    """[(kind, Decoding, [Request])]: n translations, n general answers and n MGSM answers, seeded."""
    from lidr.backends import Request
    from lidr.data import load_mgsm
    from lidr.generate import decoding_for
    from lidr.io import read_jsonl
    from lidr.prompts import TRANSLATION_PRIMER, task_messages, translation_messages

    rng = random.Random(seed)
    langs = params.languages
    general = [r["instruction"] for r in read_jsonl(ROOT / "data/builtin/general_en.jsonl")]
    mgsm = [r for lang in langs.all for r in load_mgsm(str(ROOT / "data/builtin/mgsm"), lang)]
    translations = [
        Request.chat(translation_messages(rng.choice(general), rng.choice(langs.others)), TRANSLATION_PRIMER)
        for _ in range(n)
    ]
    answers = [Request.chat(task_messages(t, "general", "en")) for t in rng.sample(general, n)]
    math = [Request.chat(task_messages(r["question"], "math", r["lang"])) for r in rng.sample(mgsm, n)]
    g = params.generation
    answer, translate = decoding_for(g, params.seed, "answer"), decoding_for(g, params.seed, "translation")
    return [
        ("translate", translate, translations),
        ("answer", answer, answers),
        ("math", answer, math),
    ]


def _hf_generate(backend, rows: list[list[int]], decoding, compiled: bool = False) -> tuple[list, int]:
    """model.generate on one left-padded batch: [(text, generated tokens)] and the token slots it used.

    `compiled`: with a static KV cache and the decoding step compiled by `torch.compile` (inductor;
    transformers compiles it only on accelerators unless told to on every device); torch compiles
    again when a later call's shapes (batch, cache length) differ, and the time it takes counts."""
    import torch

    tok, pad = backend.tokenizer, backend.tokenizer.pad_token_id
    width = max(len(r) for r in rows)
    ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows])
    mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
    extra = {"stop_strings": list(decoding.stop), "tokenizer": tok} if decoding.stop else {}
    if compiled:
        from transformers import CompileConfig

        config = CompileConfig(mode="default")  # "reduce-overhead" means CUDA graphs
        config._compile_all_devices = True
        extra.update(cache_implementation="static", compile_config=config)
    with torch.inference_mode():
        out = backend.model.generate(
            input_ids=ids,
            attention_mask=mask,
            do_sample=False,
            max_new_tokens=decoding.max_new_tokens,
            repetition_penalty=decoding.repetition_penalty,
            eos_token_id=backend.eos_ids,
            pad_token_id=pad,
            **extra,
        )
    new = out[:, width:].tolist()
    slots = len(rows) * (width + len(new[0]))
    return [_text_and_tokens(backend, row, decoding) for row in new], slots


def _text_and_tokens(backend, row: list[int], decoding) -> tuple[str, int]:
    """A row of new token ids: its text up to end of turn or stop string, and the tokens up to there."""
    from lidr.backends import cut_at_stop

    tok = backend.tokenizer
    end = next((i for i, t in enumerate(row) if t in backend.eos_ids), None)
    kept = row if end is None else row[:end]
    text, stopped = cut_at_stop(tok.decode(kept, skip_special_tokens=True), decoding.stop)
    n = len(row) if end is None else end + 1
    if stopped and end is None:  # count the tokens up to the stop string, not what runs on after it
        n = next(i + 1 for i in range(len(kept)) if cut_at_stop(tok.decode(kept[: i + 1]), decoding.stop)[1])
    return text, n


def _hf_generate_batch(backend, rows: list[list[int]], decoding) -> list[tuple[str, int, int]]:
    """transformers' continuous batching: [(text, tokens up to the stop, tokens generated)] in order."""
    from transformers import GenerationConfig

    tok = backend.tokenizer
    config = GenerationConfig(
        do_sample=False,
        max_new_tokens=decoding.max_new_tokens,
        repetition_penalty=decoding.repetition_penalty,
        eos_token_id=backend.eos_ids,
        pad_token_id=tok.pad_token_id,
    )
    outs = backend.model.generate_batch(inputs=rows, generation_config=config, warmup=False)
    results = [
        (*_text_and_tokens(backend, list(o.generated_tokens), decoding), len(o.generated_tokens))
        for o in outs.values()
    ]
    if len(results) != len(rows):
        raise RuntimeError(f"generate_batch returned {len(results)} of {len(rows)} requests")
    return results


def run_mode(mode: str, params, model_dir: str, n: int, seed: int) -> dict:
    import dataclasses

    from lidr.backends import make_backend
    from lidr.generate import generate

    if mode == "loop":
        g = dataclasses.replace(params.generation, chunk_size=params.generation.batch_size, draft_tokens=0)
        params = dataclasses.replace(params, generation=g)
    backend = make_backend(model_dir, params.generation, params.model, params.seed)
    prefills: list[tuple[int, int]] = []  # (token slots, prompt tokens) of each prefill of the project's loop
    fed: list[int] = []  # token slots of each decoding step of the project's loop
    if mode in PROJECT_LOOP:
        import lidr.backends.cpu_kernels as kernels
        import lidr.backends.decode as decode
        import lidr.backends.hf as hf

        if mode == "loop":  # the second backend: torch's own kernels, no guessed tokens
            hf.cpu_kernels = lambda model: contextlib.nullcontext()
        if mode in ("loop", "previous"):  # no packed weights
            kernels._HAS_ONEDNN_PACKING = False
        real = decode._prefill

        def counting(model, prompts, *args):
            prefills.append((len(prompts) * max(len(p) for p in prompts), sum(len(p) for p in prompts)))
            return real(model, prompts, *args)

        decode._prefill = counting
        real_step = decode._Running.step

        def counting_step(run, model, drafts, pad):
            fed.append(len(drafts) * (1 + max(len(d) for d in drafts)))  # token slots, rejected guesses too
            return real_step(run, model, drafts, pad)

        decode._Running.step = counting_step
    texts, tokens, slots, useful = [], 0, 0, 0
    started, cpu_started = time.perf_counter(), _cpu_seconds()
    for _, decoding, requests in workload(params, n, seed):
        prompts = [backend.render(r) for r in requests]
        rows = [backend.tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
        if mode in PROJECT_LOOP:
            outs = generate(backend, requests, decoding, model_dir=model_dir, journal=False, desc=mode)
            texts += [c.text for c in outs]
            tokens += sum(c.n_tokens for c in outs)
            # A finished row leaves the batch: a row's first token comes from its prefill, the others
            # from decoding steps, whose slots are the rows' fed tokens (rejected guesses are waste);
            # a prefill's slots are each row's prompt, left-padded.
            slots += sum(fed) + len(outs) + sum(s for s, _ in prefills)
            useful += sum(c.n_tokens for c in outs) + sum(u for _, u in prefills)
            prefills.clear()
            fed.clear()
            continue
        if mode == "continuous":
            outs = _hf_generate_batch(backend, rows, decoding)
            texts += [o[0] for o in outs]
            tokens += sum(o[1] for o in outs)
            slots += sum(o[2] for o in outs) + sum(len(r) for r in rows)
            useful += sum(o[1] for o in outs) + sum(len(r) for r in rows)
            continue
        order = list(range(len(rows)))
        size = 1 if mode == "naive" else backend.batch_size
        if mode == "sorted-generate":
            order.sort(key=lambda i: -len(rows[i]))
        results = {}
        for start in range(0, len(order), size):
            chunk = order[start : start + size]
            outs, used = _hf_generate(backend, [rows[i] for i in chunk], decoding, compiled=mode == "static-compile")
            results.update(zip(chunk, outs, strict=True))
            slots += used
            useful += sum(len(rows[i]) + o[1] for i, o in zip(chunk, outs, strict=True))
        texts += [results[i][0] for i in range(len(rows))]
        tokens += sum(o[1] for o in results.values())
    seconds, cpu = time.perf_counter() - started, _cpu_seconds() - cpu_started
    return {
        "mode": mode,
        "requests": len(texts),
        "tokens": tokens,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "padding_waste": 1 - useful / slots if slots else 0.0,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "texts": texts,
    }


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def table(results: list[dict]) -> str:
    naive = next((r for r in results if r["mode"] == "naive"), None)
    reference = naive["texts"] if naive else None
    batched = next((r for r in results if r["mode"] == "generate"), None)
    lines = [
        "| mode | requests | generated tokens | tokens/s | requests/s | padding waste | wall s | CPU s |"
        " tokens/CPU-s | peak MB | x naive | x generate | same text as naive |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        tps = r["tokens"] / r["seconds"]
        speedup = f"{tps / (naive['tokens'] / naive['seconds']):.1f}" if naive else "-"
        versus = f"{tps / (batched['tokens'] / batched['seconds']):.2f}" if batched else "-"
        same = "-"
        if reference:
            hits = sum(a == b or (a and b.startswith(a)) for a, b in zip(r["texts"], reference, strict=True))
            same = f"{hits}/{len(reference)}"
        lines.append(
            f"| {r['mode']} | {r['requests']} | {r['tokens']} | {tps:.1f} | {r['requests'] / r['seconds']:.2f} |"
            f" {100 * r['padding_waste']:.0f}% | {r['seconds']:.1f} | {r['cpu_seconds']:.1f} |"
            f" {r['tokens'] / r['cpu_seconds']:.1f} | {r['peak_mb']:.0f} | {speedup} | {versus} | {same} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--model", help="a model folder (default: materialise params' base model in a temp folder)")
    ap.add_argument("--n", type=int, default=16, help="requests of each kind (default 16)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--modes", nargs="+", choices=MODES, default=list(DEFAULT_MODES), help="default: all but static-compile"
    )
    ap.add_argument("--batch-size", type=int, help="overrides generation.batch_size for every batched mode")
    ap.add_argument("--threads", type=int, help="overrides generation.threads")
    ap.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="run the modes this many times in turn and show each mode's run of median wall time "
        "(this machine's speed drifts by a fifth within minutes)",
    )
    ap.add_argument("--one", choices=MODES, help=argparse.SUPPRESS)  # internal: run one mode, print JSON
    args = ap.parse_args()
    if args.repeats < 1:
        ap.error("--repeats must be at least 1")

    import dataclasses

    from lidr.config import load_params

    params = load_params(args.params)
    g = params.generation
    g = dataclasses.replace(g, batch_size=args.batch_size or g.batch_size, threads=args.threads or g.threads)
    params = dataclasses.replace(params, generation=g)
    if args.one:
        print(json.dumps(run_mode(args.one, params, args.model, args.n, args.seed)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = args.model
        if model_dir is None:
            from lidr.model import materialise_base_model

            model_dir = str(Path(tmp) / "model")
            materialise_base_model(params.model, Path(model_dir))
        runs: dict[str, list[dict]] = {mode: [] for mode in args.modes}
        for mode in [m for _ in range(args.repeats) for m in args.modes]:
            cmd = [
                sys.executable,
                "-m",
                "benchmarks.generation",
                "--one",
                mode,
                "--model",
                model_dir,
                "--params",
                args.params,
                "--n",
                str(args.n),
                "--seed",
                str(args.seed),
            ]
            cmd += ["--batch-size", str(g.batch_size)] + (["--threads", str(g.threads)] if g.threads else [])
            done = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT)
            runs[mode].append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(f"{mode}: {runs[mode][-1]['seconds']:.1f} s", file=sys.stderr, flush=True)
        results = [sorted(r, key=lambda x: x["seconds"])[(len(r) - 1) // 2] for r in runs.values()]
    print(
        f"workload: {3 * args.n} requests ({args.n} translations, {args.n} answers, {args.n} MGSM answers), "
        f"batch size {g.batch_size}, threads {g.threads or 'torch default'} of {os.cpu_count()} CPUs, "
        f"loop_span {g.loop_span}"
        + (f"; each mode's run of median wall time of {args.repeats}, modes in turn" if args.repeats > 1 else "")
        + "\n"
    )
    print(table(results))


if __name__ == "__main__":
    main()
