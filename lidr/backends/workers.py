"""Decoding processes for the CPU: the chunks of a generation call decoded side by side.

On a 2-core CPU one process decoding with both cores' threads keeps them busy only part of the time
(a decoding step of a few dozen rows is too small to split well); two processes, each with one thread
and its own copy of the model, each decoding a chunk, finish the same chunks sooner
(`python -m benchmarks.workers` measures it). Each chunk is decoded whole by one process, exactly as
one process would decode it, so its rows have the same neighbours; the texts are the same as with one
process wherever the kernels give the same sums with one thread as with several
(`python -m benchmarks.kernel_bits` checks a machine; docs/generation.md, "Workers").

The workers start (spawned, never forked: torch's OpenMP threads do not survive a fork) when the
backend is made, load the model once, and live until the stage's process exits, or is killed: each
checks twice a second that its parent is alive. A worker that dies (killed for memory, say) fails the
call with an error that names `generation.workers`.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import resource
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lidr.backends import Completion, Decoding
    from lidr.config import GenerationParams, ModelParams

_backend = None  # in a worker: its TransformersBackend
PARENT_POLL_S = 0.5  # how often a worker checks that its parent is alive


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def threads_per_worker(threads: int, workers: int) -> int:
    """Each worker's torch threads: `threads` (0: every usable core) shared out among `workers`, at least 1."""
    return max(1, (threads or usable_cores()) // workers)


def _start(model_dir: str, generation: GenerationParams, model: ModelParams) -> None:
    global _backend
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()
    from lidr.backends.hf import TransformersBackend

    _backend = TransformersBackend(model_dir, generation, model)


def _exit_with_parent(parent: int) -> None:
    """End this worker once its parent has gone (killed, say): every worker holds a writing end of the pool's
    queue, so none would ever read the end of it, and they would live on, each with its copy of the model."""
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_S)
    os._exit(1)


def _ready() -> None:
    pass


def _decode(texts: list[str], decoding: Decoding) -> tuple[list[Completion], int, float]:
    """The chunk's completions, this worker's process id and its peak resident memory (MB) so far."""
    completions = _backend.generate_batch(texts, decoding)
    return completions, os.getpid(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Workers:
    """`workers` processes, each with a TransformersBackend of `threads` threads on the model in `model_dir`."""

    def __init__(self, model_dir: str, generation: GenerationParams, model: ModelParams, workers: int, threads: int):
        import dataclasses

        self.workers, self.threads = workers, threads
        self._args = (model_dir, dataclasses.replace(generation, threads=threads, workers=1), model)
        self._pool: cf.ProcessPoolExecutor | None = None
        self._peaks: dict[int, float] = {}  # each worker's peak resident memory (MB) so far, by process id

    def peak_memory_mb(self) -> float:
        """The workers' peak resident memory so far, summed (an upper bound on what they held at once)."""
        return round(sum(self._peaks.values()), 1)

    def start(self) -> None:
        """Start the workers now (each loads the model), so that they are ready when the first chunks come."""
        if self._pool is None:
            self._pool = cf.ProcessPoolExecutor(
                self.workers, mp_context=multiprocessing.get_context("spawn"), initializer=_start, initargs=self._args
            )
            for _ in range(self.workers):  # each submission while none is idle starts one more worker
                self._pool.submit(_ready)

    def decode_chunks(self, chunks: list[list[str]], decoding: Decoding) -> Iterator[tuple[int, list[Completion]]]:
        """(index, completions) of each chunk as it finishes; the workers take the chunks in order."""
        if not chunks:
            return
        self.start()
        futures = {self._pool.submit(_decode, chunk, decoding): i for i, chunk in enumerate(chunks)}
        try:
            for future in cf.as_completed(futures):
                try:
                    completions, pid, peak = future.result()
                except cf.process.BrokenProcessPool as e:
                    raise RuntimeError(
                        "a decoding worker died or failed to start (its error, if any, is above; killed for memory?): "
                        f"each of generation.workers = {self.workers} holds a copy of the model; "
                        "set generation.workers: 1 to decode in this process"
                    ) from e
                self._peaks[pid] = max(self._peaks.get(pid, 0.0), peak)
                yield futures[future], completions
        finally:
            for future in futures:
                future.cancel()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
