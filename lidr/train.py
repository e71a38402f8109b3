"""DPO + NLL training with TRL, from the iteration's starting model, which is also the frozen reference.

Loss (docs/method.md, step 7):
-log sigmoid(beta * (chosen log-ratio - rejected log-ratio)) - alpha * log pi(y_w|x)/|y_w|,
computed by `lidr.dpo_loss.dpo_nll_loss` inside `LidrDPOTrainer`, a DPOTrainer whose loss is replaced: TRL's "sft"
loss is a token mean over the whole batch, not the per-sequence length-normalised NLL of the method. Its arguments are
a `lidr.dpo_config.LidrDPOConfig`, DPOConfig with the NLL weight alpha as one more field (`nll_weight`). The trainer
logs the loss, its DPO and NLL parts, chosen/rejected rewards, margins, preference accuracy and learning rate
(through dvclive when a folder is given). LoRA by default (the reference is the base with the adapter disabled);
full fine-tuning as an option; reference log-probabilities can be precomputed once so the reference model is not
held during training. The result is always a full, merged checkpoint that the next iteration starts from.
Launched by `accelerate launch` (the configuration comes from `train.launch`); only the main process writes.

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
from lidr.errors import ParamsError
from lidr.io import atomic_path
from lidr.model import load_causal_lm, load_tokenizer, model_fingerprint

CHECKPOINT_ROOT = Path(os.environ.get("LIDR_CHECKPOINT_DIR", ".lidr/checkpoints"))

# DPOConfig fields that lidr sets itself: from the top-level params (beta, seed), from the machine (bf16, use_cpu),
# or because the stage needs them so (checkpoints for resuming, the loss, dvclive through a callback)
SET_BY_LIDR = {
    "output_dir": "the stage's checkpoint folder",
    "beta": "the top-level beta",
    "seed": "the top-level seed",
    "data_seed": "the top-level seed",
    "loss_type": "lidr's DPO + NLL loss (nll_weight)",
    "nll_weight": "the top-level nll_weight",
    "bf16": "on when a GPU is there",
    "use_cpu": "on when no GPU is there",
    "report_to": "dvclive, through the stage's callback",
    "save_strategy": "steps (save_steps sets how often)",
    "save_total_limit": "1",
}
# DPOConfig fields that DPOConfig itself lets through at 0 or below, though training then fails or does nothing
MUST_BE_POSITIVE = (
    "learning_rate",
    "num_train_epochs",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "max_length",
    "save_steps",
)
# LoraConfig fields that lidr sets itself
LORA_SET_BY_LIDR = {"task_type": "CAUSAL_LM"}


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


def _library_fields(cls, given: dict, key: str, reserved: dict[str, str]) -> dict:
    """`given` checked against the dataclass `cls`'s fields and converted to their types (a float written as
    "5e-7" in YAML, a list for a tuple): an unknown or reserved key is a ParamsError naming `key`."""
    import dataclasses
    import difflib
    import typing

    from lidr.config import _convert

    fields = {f.name: f for f in dataclasses.fields(cls)}
    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # an annotation that does not resolve: keep the values as they are
        hints = {}
    out = {}
    for name, value in given.items():
        if name in reserved:
            raise ParamsError(f"{key}.{name}: set by lidr ({reserved[name]}); remove it from params.yaml")
        if name not in fields:
            close = difflib.get_close_matches(name, list(fields), n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            raise ParamsError(
                f"unknown key {key}.{name}: not a field of {cls.__module__.split('.')[0]}.{cls.__name__}{hint}"
            )
        try:
            out[name] = _convert(value, hints[name], f"{key}.{name}") if name in hints else value
        except TypeError:  # a type lidr's converter does not know: the library checks it
            out[name] = value
    return out


def _construct(cls, kwargs: dict, key: str, given: dict, name: str | None = None):
    """`cls(**kwargs)`, its own validation errors surfacing as a ParamsError with the key they name (and the class
    as `name`, by default its own name)."""
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as e:
        message = str(e)
        named = [k for k in given if k in message] or [
            k for k, v in given.items() if len(f"{v}") > 2 and f"{v}" in message
        ]
        where = f"{key}.{named[0]}" if named else key
        raise ParamsError(f"{where}: {name or cls.__name__} refused it: {' '.join(str(e).split())}") from None


def dpo_config(params: Params, output_dir: str, use_cpu: bool):
    """`LidrDPOConfig` (trl.DPOConfig and `nll_weight`) from `train` (every key but mode, launch and lora: each a
    DPOConfig field), with the fields lidr sets itself."""
    from trl import DPOConfig

    from lidr.dpo_config import LidrDPOConfig

    fields = _library_fields(DPOConfig, params.train.dpo, "train", SET_BY_LIDR)
    for name in MUST_BE_POSITIVE:
        if isinstance(fields.get(name), int | float) and fields[name] <= 0:
            raise ParamsError(f"train.{name}: expected a value > 0, got {fields[name]}")
    kwargs = dict(
        output_dir=output_dir,
        beta=params.beta,
        nll_weight=params.nll_weight,
        loss_type=["sigmoid"],  # the loss itself is LidrDPOTrainer's; this only keeps TRL's checks consistent
        seed=params.seed,
        data_seed=params.seed,
        bf16=not use_cpu,
        use_cpu=use_cpu,
        report_to="none",
        save_strategy="steps",
        save_total_limit=1,
        disable_tqdm=False,
        dataloader_num_workers=0,
    )
    return _construct(LidrDPOConfig, {**kwargs, **fields}, "train", params.train.dpo, name="DPOConfig")


def lora_config(params: Params):
    """peft.LoraConfig from `train.lora` as it is, for a causal language model."""
    from peft import LoraConfig

    fields = _library_fields(LoraConfig, params.train.lora, "train.lora", LORA_SET_BY_LIDR)
    if isinstance(fields.get("target_modules"), tuple):
        fields["target_modules"] = list(fields["target_modules"])
    return _construct(LoraConfig, {**fields, "task_type": "CAUSAL_LM"}, "train.lora", params.train.lora)


def check_train(params: Params) -> None:
    """`train` and `train.lora` as trl.DPOConfig and peft.LoraConfig take them (imports both: seconds)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        dpo_config(params, tmp, use_cpu=True)
    if params.train.mode == "lora":
        lora_config(params)


def trainer_class():
    """DPOTrainer with the exact loss of docs/method.md, step 7, weighting the NLL by `args.nll_weight` (a
    `LidrDPOConfig`); TRL is imported only when training."""
    from trl import DPOTrainer

    from lidr.dpo_loss import dpo_nll_loss, sequence_logps

    class LidrDPOTrainer(DPOTrainer):
        def _compute_loss(self, model, inputs, return_outputs):
            mode = "train" if self.model.training else "eval"
            extra = {"completion_mask", "ref_chosen_logps", "ref_rejected_logps"}
            model_kwargs = {k: v for k, v in inputs.items() if k not in extra}
            model_kwargs["use_cache"] = False
            mask = inputs["completion_mask"][..., 1:]
            labels = inputs["input_ids"].masked_fill(inputs["completion_mask"] == 0, -100)
            outputs = model(**model_kwargs, labels=labels, fused_lm_head=True)
            logps, lengths = sequence_logps(outputs.log_probs[:, -mask.size(1) :], mask)
            chosen_logps, rejected_logps = logps.chunk(2, dim=0)  # the batch is [chosen..., rejected...]
            chosen_lengths, _ = lengths.chunk(2, dim=0)
            if self.precompute_ref_logps:
                ref_chosen, ref_rejected = inputs["ref_chosen_logps"], inputs["ref_rejected_logps"]
            else:
                ref_chosen, ref_rejected = self.compute_ref_log_probs(
                    model if self.ref_model is None else self.ref_model, inputs
                )
            out = dpo_nll_loss(
                chosen_logps, rejected_logps, ref_chosen, ref_rejected, chosen_lengths, self.beta, self.args.nll_weight
            )
            loss = out.loss
            if self.aux_loss_enabled:
                loss = loss + self.router_aux_loss_coef * outputs.aux_loss
            gather = self.accelerator.gather
            chosen_r, rejected_r = gather(out.chosen_rewards), gather(out.rejected_rewards)
            logged = {
                "dpo_loss": gather(out.dpo.detach()).mean(),
                "nll": gather(out.nll.detach()).mean(),
                "rewards/chosen": chosen_r.mean(),
                "rewards/rejected": rejected_r.mean(),
                "rewards/margins": (chosen_r - rejected_r).mean(),
                "rewards/accuracies": (chosen_r > rejected_r).float().mean(),
                "logps/chosen": gather(chosen_logps.detach()).mean(),
                "logps/rejected": gather(rejected_logps.detach()).mean(),
            }
            for name, value in logged.items():
                self._metrics[mode][name].append(value.item())
            return (loss, outputs) if return_outputs else loss

    return LidrDPOTrainer


def make_trainer(
    params: Params, model_dir: str, pairs_path: str, ckpt_dir: Path, live_dir: str | None, ref_model=None, callbacks=()
):
    """The configured trainer for one run; `ref_model` defaults to the starting model (docs/method.md, step 7)."""
    import datasets
    import torch

    use_cpu = not torch.cuda.is_available()
    args = dpo_config(params, str(ckpt_dir), use_cpu)
    pairs = datasets.load_dataset("json", data_files=str(pairs_path), split="train")
    pairs = pairs.select_columns(["prompt", "chosen", "rejected"])
    tokenizer = load_tokenizer(model_dir, params.model)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = load_causal_lm(model_dir, params.model)
    peft_config = lora_config(params) if params.train.mode == "lora" else None
    callbacks = list(callbacks)
    if live_dir:
        from dvclive import Live
        from transformers.integrations import DVCLiveCallback

        resume = any(ckpt_dir.glob("checkpoint-*"))
        # The curves are logged beside the trainer checkpoints (so a resumed run continues them) and copied
        # to `live_dir` only at the end: a killed run never leaves a partial DVC output.
        live = Live(str(live_staging(ckpt_dir)), save_dvc_exp=False, dvcyaml=None, resume=resume)
        callbacks.append(DVCLiveCallback(live=live))
    return trainer_class()(
        model=model,
        ref_model=ref_model,
        args=args,
        train_dataset=pairs,
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=callbacks,
    )


def live_staging(ckpt_dir: Path) -> Path:
    return ckpt_dir / "dvclive"


def last_checkpoint(ckpt_dir: Path) -> Path | None:
    done = [p for p in ckpt_dir.glob("checkpoint-*") if (p / "trainer_state.json").exists()]
    return max(done, key=lambda p: int(p.name.split("-")[-1])) if done else None


def train(
    params: Params,
    model_dir: str,
    pairs_path: str,
    out_dir: Path | None,
    live_dir: str | None,
    callbacks=(),
) -> dict:
    """Train on `pairs_path`, write the merged model to `out_dir` (main process only); return a run summary.

    Resumes from the last trainer checkpoint of the same run key when one exists (an interrupted run); the
    checkpoints of a run that completes are removed.
    """
    key = run_key(params, model_dir, pairs_path)
    ckpt_dir = CHECKPOINT_ROOT / key
    trainer = make_trainer(params, model_dir, pairs_path, ckpt_dir, live_dir, callbacks=callbacks)
    last = last_checkpoint(ckpt_dir)
    result = trainer.train(resume_from_checkpoint=str(last) if last else None)
    save_merged(trainer, params, out_dir)
    trainer.accelerator.wait_for_everyone()
    if trainer.accelerator.is_main_process and live_dir:
        with atomic_path(live_dir, directory=True) as tmp:
            shutil.copytree(live_staging(ckpt_dir), tmp, dirs_exist_ok=True)
    if trainer.accelerator.is_main_process and out_dir is not None:
        # The run is complete and its result is in out_dir: a rerun must train (and log its curves) again
        shutil.rmtree(ckpt_dir, ignore_errors=True)
    history = [h for h in trainer.state.log_history if "loss" in h]
    return {
        "steps": trainer.state.global_step,
        "pairs": len(trainer.train_dataset),
        "train_loss": round(result.training_loss, 6),
        "final_loss": round(history[-1]["loss"], 6) if history else None,
        "final_nll": round(history[-1]["nll"], 6) if history else None,
        "resumed_from": last.name if last else None,
        "run_key": key,
    }


def save_merged(trainer, params: Params, out_dir: Path | None) -> None:
    """Every process takes part (ZeRO-3 and FSDP gather the shards); the main process writes to `out_dir`."""
    acc = trainer.accelerator
    state_dict = acc.get_state_dict(trainer.model) if params.train.mode == "full" else None
    if not acc.is_main_process or out_dir is None:
        return
    final = acc.unwrap_model(trainer.model)
    if params.train.mode == "lora":
        final = final.merge_and_unload()
    final.save_pretrained(out_dir, state_dict=state_dict, safe_serialization=True)
    trainer.processing_class.save_pretrained(out_dir)
