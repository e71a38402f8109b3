"""Decoding workers (`generation.workers`, lidr/backends/workers.py): processes that decode chunks side by side."""

import dataclasses

import pytest
import torch

from lidr.backends import Completion, Decoding, Request, make_backend
from lidr.backends.workers import Workers, threads_per_worker
from lidr.config import load_params
from lidr.errors import ParamsError
from lidr.generate import generate
from tests.conftest import ROOT
from tests.test_generate import DECODING, REQUESTS, FakeBackend

TEXTS = ("Hi", "Name three big cities please, with their countries", "2+2?", "Why?", "Tell me a joke", "Count to five")


def test_two_workers_decode_the_same_texts_as_one_process_on_the_tiny_model(params, tiny_model):
    """Chunks of two, out to two one-thread workers and back in order, against one one-thread process: the
    same kernels in both, so this checks the plumbing. Whether one thread sums as two do is the CPU's and the
    kernels' (benchmarks/workers.py measures it)."""
    requests = [Request.chat([{"role": "user", "content": t}]) for t in TEXTS]
    decoding = Decoding(max_new_tokens=16, repetition_penalty=1.2)
    runs, before = {}, torch.get_num_threads()
    try:
        for workers in (1, 2):
            generation = dataclasses.replace(
                params.generation, workers=workers, threads=workers, chunk_size=2, batch_size=2
            )
            backend = make_backend(str(tiny_model), generation, params.model, params.seed)
            assert (backend.workers is not None) == (workers == 2)
            runs[workers] = generate(backend, requests, decoding, model_dir=tiny_model, journal=False)
            if backend.workers is not None:
                assert backend.workers.threads == 1
                backend.workers.close()
    finally:
        torch.set_num_threads(before)  # the backend set this process's threads
    assert runs[2] == runs[1]
    assert len({c.text for c in runs[1]}) > 1  # the texts differ from one another: a real comparison


def test_a_worker_that_cannot_load_its_model_fails_the_call_naming_the_setting(params, tmp_path):
    workers = Workers(str(tmp_path / "no-model"), params.generation, params.model, workers=2, threads=1)
    try:
        with pytest.raises(RuntimeError, match="generation.workers"):
            list(workers.decode_chunks([["hello"]], Decoding(max_new_tokens=2)))
    finally:
        workers.close()


def test_threads_are_shared_out_among_the_workers(monkeypatch):
    import lidr.backends.workers as w

    monkeypatch.setattr(w, "usable_cores", lambda: 2)
    assert threads_per_worker(0, 2) == 1
    assert threads_per_worker(0, 1) == 2
    assert threads_per_worker(8, 2) == 4
    assert threads_per_worker(1, 4) == 1  # never fewer than one


def test_workers_must_be_at_least_one(tmp_path):
    text = (ROOT / "params.yaml").read_text().replace("  workers: 2 ", "  workers: 0 ", 1)
    (tmp_path / "params.yaml").write_text(text)
    with pytest.raises(ParamsError, match="generation.workers"):
        load_params(tmp_path / "params.yaml")


class OutOfOrder(FakeBackend):
    """Hands back its chunks last first (as workers may finish them); can be killed after some chunks."""

    def decode_chunks(self, chunks, decoding):
        for i in reversed(range(len(chunks))):
            if self.fail_after is not None and len(self.batches) == self.fail_after:
                raise KeyboardInterrupt("killed")
            self.batches.append(list(chunks[i]))
            yield (
                i,
                [Completion(text=f"<{t}:{len(chunks[i])}>", finish_reason="stop", n_tokens=len(t)) for t in chunks[i]],
            )


def test_chunks_finished_out_of_order_keep_the_output_and_a_killed_run_resumes_with_the_same_chunks(tmp_path):
    uninterrupted = generate(FakeBackend(), REQUESTS, DECODING, model_dir=tmp_path, journal=False)
    assert generate(OutOfOrder(), REQUESTS, DECODING, model_dir=tmp_path, journal=False) == uninterrupted
    first = OutOfOrder(fail_after=1)  # the last chunk is journaled, then the run is killed
    with pytest.raises(KeyboardInterrupt):
        generate(first, REQUESTS, DECODING, model_dir=tmp_path)
    second = OutOfOrder()
    assert generate(second, REQUESTS, DECODING, model_dir=tmp_path) == uninterrupted
    assert sorted(first.batches + second.batches) == sorted(_chunks_of_one_run(tmp_path))


def _chunks_of_one_run(tmp_path) -> list[list[str]]:
    backend = FakeBackend()
    generate(backend, REQUESTS, DECODING, model_dir=tmp_path / "other", journal=False)
    return backend.batches
