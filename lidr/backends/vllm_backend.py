"""vLLM backend (GPU). Imported only when params.yaml sets generation.backend: vllm.

Prompts go to vLLM as token ids (`{"prompt_token_ids": ids}`, the shape of vLLM's TokensPrompt), tokenized as
the transformers backend tokenizes them (`lidr.backends.prompt_ids`, no special tokens added): a chat-templated
prompt already starts with the BOS token, and vLLM tokenizing a plain string would add a second one.
"""

from __future__ import annotations

from lidr.backends import Completion, Decoding, Request, candidate_token_ids, chat_prompt, cut_at_stop, prompt_ids
from lidr.config import GenerationParams, ModelParams


class VllmBackend:
    name = "vllm"

    def __init__(self, model_dir: str, generation: GenerationParams, model: ModelParams, seed: int = 0):
        try:
            from vllm import LLM
        except ImportError as e:
            raise RuntimeError(
                "generation.backend is 'vllm' but vLLM is not installed: pip install 'lidr[gpu]' on a CUDA machine"
            ) from e
        g = generation
        self.llm = LLM(
            model=model_dir,
            tensor_parallel_size=g.tensor_parallel_size,
            gpu_memory_utilization=g.gpu_memory_utilization,
            seed=seed,
            trust_remote_code=model.trust_remote_code,
            dtype="auto" if model.dtype == "auto" else model.dtype,
        )
        self.tokenizer = self.llm.get_tokenizer()
        self.batch_size = g.batch_size
        self.chunk_size = g.chunk_size  # vLLM schedules within a chunk; chunks are the journal's unit

    def render(self, request: Request) -> str:
        return chat_prompt(self.tokenizer, request)

    def prompt_length(self, text: str) -> int:
        return len(prompt_ids(self.tokenizer, text))

    def generate_batch(self, texts: list[str], decoding: Decoding) -> list[Completion]:
        from vllm import SamplingParams

        sampling = SamplingParams(
            temperature=0.0,
            max_tokens=decoding.max_new_tokens,
            repetition_penalty=decoding.repetition_penalty,
            stop=list(decoding.stop) or None,
            include_stop_str_in_output=True,
            seed=decoding.seed,
        )
        completions = []
        prompts = [{"prompt_token_ids": prompt_ids(self.tokenizer, t)} for t in texts]
        for out in self.llm.generate(prompts, sampling, use_tqdm=False):
            o = out.outputs[0]
            text, _ = cut_at_stop(o.text, decoding.stop)
            reason = "length" if o.finish_reason == "length" else "stop"
            completions.append(Completion(text=text, finish_reason=reason, n_tokens=len(o.token_ids)))
        return completions

    def token_logprobs(self, texts: list[str], candidates: tuple[str, ...]) -> list[dict[str, float]]:
        """Next-token log-probabilities of `candidates`: each candidate is appended to the prompt and its
        prompt log-probability read back (prompt_logprobs=0 always includes the prompt's own token)."""
        from vllm import SamplingParams

        ids = candidate_token_ids(self.tokenizer, candidates)
        prompts = []
        for text in texts:
            base = prompt_ids(self.tokenizer, text)
            prompts += [{"prompt_token_ids": [*base, i]} for i in ids]
        sampling = SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=0)
        outs = self.llm.generate(prompts, sampling, use_tqdm=False)
        result = []
        for k in range(len(texts)):
            row = {}
            for j, (cand, tid) in enumerate(zip(candidates, ids, strict=True)):
                row[cand] = float(outs[k * len(ids) + j].prompt_logprobs[-1][tid].logprob)
            result.append(row)
        return result
