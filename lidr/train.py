"""DPO + NLL training with TRL, from the iteration's starting model, which is also the frozen reference.

Loss (METHOD.md step 7): -log sigmoid(beta * (chosen log-ratio - rejected log-ratio)) + alpha * NLL(chosen),
with TRL's loss_type ["sigmoid", "sft"] and loss_weights [1.0, alpha]. LoRA by default (the reference
is the base with the adapter disabled); full fine-tuning as an option. The result is always a full,
merged checkpoint that the next iteration starts from.

Trainer checkpoints live outside the DVC outputs, under a folder keyed by the hash of the inputs
and params, so a rerun of an interrupted stage resumes from its last checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import asdict
from pathlib import Path

from lidr.config import Params
from lidr.io import atomic_path
from lidr.model import load_causal_lm, load_tokenizer, model_fingerprint

CHECKPOINT_ROOT = Path(os.environ.get("LIDR_CHECKPOINT_DIR", ".lidr/checkpoints"))
TRL_ONLY = ("mode", "lora")


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def run_key(params: Params, model_dir: str, pairs_path: str) -> str:
    """Identity of a training run: the pairs, the starting model and every setting that shapes training."""
    settings = {
        "train": asdict(params.train),
        "beta": params.beta,
        "nll_weight": params.nll_weight,
        "seed": params.seed,
        "model": model_fingerprint(model_dir),
        "pairs": file_sha256(pairs_path),
    }
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def dpo_config(params: Params, output_dir: str, use_cpu: bool, save_steps: int):
    from trl import DPOConfig

    t = params.train
    trl_fields = {k: v for k, v in asdict(t).items() if k not in TRL_ONLY}
    return DPOConfig(
        output_dir=output_dir,
        beta=params.beta,
        loss_type=["sigmoid", "sft"],
        loss_weights=[1.0, params.nll_weight],
        seed=params.seed,
        data_seed=params.seed,
        bf16=not use_cpu,
        use_cpu=use_cpu,
        report_to="none",
        save_strategy="steps",
        save_steps=save_steps,
        save_total_limit=1,
        disable_tqdm=False,
        dataloader_num_workers=0,
        **trl_fields,
    )


def train(
    params: Params,
    model_dir: str,
    pairs_path: str,
    out_dir: Path,
    live_dir: str | None,
    save_steps: int = 10,
    max_steps: int | None = None,
) -> dict:
    """Train on `pairs_path`, write the merged model to `out_dir`; return a summary of the run."""
    import datasets
    import torch
    from trl import DPOTrainer

    use_cpu = not torch.cuda.is_available()
    key = run_key(params, model_dir, pairs_path)
    ckpt_dir = CHECKPOINT_ROOT / key
    args = dpo_config(params, str(ckpt_dir), use_cpu, save_steps)
    if max_steps is not None:
        args.max_steps = max_steps
    pairs = datasets.load_dataset("json", data_files=str(pairs_path), split="train")
    pairs = pairs.select_columns(["prompt", "chosen", "rejected"])
    tokenizer = load_tokenizer(model_dir, params)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = load_causal_lm(model_dir, params)
    peft_config = None
    if params.train.mode == "lora":
        from peft import LoraConfig

        lora = params.train.lora
        peft_config = LoraConfig(
            r=lora.r,
            lora_alpha=lora.lora_alpha,
            lora_dropout=lora.lora_dropout,
            target_modules=list(lora.target_modules),
            task_type="CAUSAL_LM",
        )
    callbacks = []
    # The curves are logged beside the trainer checkpoints (so a resumed run continues them) and copied
    # to `live_dir` only at the end: a killed run never leaves a partial DVC output.
    live_staging = ckpt_dir / "dvclive"
    if live_dir:
        from dvclive import Live
        from transformers.integrations import DVCLiveCallback

        resume = any(ckpt_dir.glob("checkpoint-*"))
        live = Live(str(live_staging), save_dvc_exp=False, dvcyaml=None, resume=resume)
        callbacks.append(DVCLiveCallback(live=live))
    trainer = DPOTrainer(
        model=model,
        ref_model=None,
        args=args,
        train_dataset=pairs,
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=callbacks,
    )
    last = sorted(ckpt_dir.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1]))
    result = trainer.train(resume_from_checkpoint=str(last[-1]) if last else None)
    final = trainer.model
    if params.train.mode == "lora":
        final = final.merge_and_unload()
    final.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    if live_dir:
        with atomic_path(live_dir, directory=True) as tmp:
            shutil.copytree(live_staging, tmp, dirs_exist_ok=True)
    history = [h for h in trainer.state.log_history if "loss" in h]
    return {
        "steps": trainer.state.global_step,
        "pairs": len(pairs),
        "train_loss": round(result.training_loss, 6),
        "final_loss": round(history[-1]["loss"], 6) if history else None,
        "resumed_from": last[-1].name if last else None,
        "run_key": key,
    }
