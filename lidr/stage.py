"""What every stage shares: argument parsing, clear errors, cost accounting and run metadata."""

from __future__ import annotations

import argparse
import importlib.metadata
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from lidr.config import load_params
from lidr.errors import LidrError


def parser(doc: str | None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0])
    p.add_argument("--params", default="params.yaml", help="the params file (default: params.yaml)")
    return p


def run(
    main: Callable[[argparse.Namespace], None], ap: argparse.ArgumentParser, argv: list[str] | None = None
) -> None:
    args = ap.parse_args(argv)
    try:
        main(args)
    except LidrError as e:  # the user's to fix: one clear line
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


def params_of(args: argparse.Namespace):
    return load_params(args.params)


def write_meta(path: str, backend: str, model_dir: str, **settings) -> None:
    from lidr.io import write_json

    write_json(path, {"backend": backend, "model": model_dir, "versions": library_versions(), **settings})


def library_versions() -> dict[str, str]:
    out = {}
    for name in ("lidr", "torch", "transformers", "trl", "peft", "datasets", "polars", "great-expectations", "vllm"):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def peak_memory_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


@dataclass
class Cost:
    """Seconds, generated tokens and peak memory of one generation stage."""

    started: float = field(default_factory=time.perf_counter)
    tokens: int = 0
    requests: int = 0

    def add(self, completions) -> None:
        self.tokens += sum(c.n_tokens for c in completions)
        self.requests += len(completions)

    def as_metrics(self) -> dict:
        seconds = time.perf_counter() - self.started
        return {
            "seconds": round(seconds, 1),
            "generated_tokens": self.tokens,
            "requests": self.requests,
            "tokens_per_s": round(self.tokens / seconds, 2) if seconds else 0.0,
            "peak_memory_mb": peak_memory_mb(),
        }
