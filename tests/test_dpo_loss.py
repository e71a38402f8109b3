"""The trained loss is docs/method.md's DPO + length-normalised NLL, checked by hand on literals and a tiny batch."""

import dataclasses
import json
import math

import pytest
import torch
from transformers import AutoModelForCausalLM

from lidr.dpo_loss import dpo_nll_loss, sequence_logps
from lidr.train import make_trainer


def test_literal_values():
    out = dpo_nll_loss(
        chosen_logps=torch.tensor([-4.0, -9.0]),
        rejected_logps=torch.tensor([-6.0, -5.0]),
        ref_chosen_logps=torch.tensor([-5.0, -8.0]),
        ref_rejected_logps=torch.tensor([-5.0, -6.0]),
        chosen_lengths=torch.tensor([2, 3]),
        beta=0.5,
        alpha=2.0,
    )
    # pair 1: margin (1) - (-1) = 2; pair 2: margin (-1) - (1) = -2
    dpo = [-math.log(1 / (1 + math.exp(-0.5 * 2))), -math.log(1 / (1 + math.exp(0.5 * 2)))]
    nll = [4.0 / 2, 9.0 / 3]
    assert out.dpo.item() == pytest.approx(sum(dpo) / 2)
    assert out.nll.item() == pytest.approx(2.5)
    assert out.loss.item() == pytest.approx(sum(d + 2.0 * n for d, n in zip(dpo, nll, strict=True)) / 2)
    assert out.chosen_rewards.tolist() == pytest.approx([0.5, -0.5])
    assert out.rejected_rewards.tolist() == pytest.approx([-0.5, 0.5])


def test_sequence_logps_counts_only_masked_tokens():
    logps, n = sequence_logps(torch.tensor([[-1.0, -2.0, -3.0]]), torch.tensor([[0, 1, 1]]))
    assert logps.tolist() == [-5.0] and n.tolist() == [2.0]


PAIRS = [  # chosen lengths differ a lot, so a batch token-mean NLL differs from the per-sequence mean
    {
        "prompt": [{"role": "user", "content": "Say hi."}],
        "chosen": [{"role": "assistant", "content": "Hi."}],
        "rejected": [{"role": "assistant", "content": "no no no"}],
    },
    {
        "prompt": [{"role": "user", "content": "Describe the sea."}],
        "chosen": [
            {
                "role": "assistant",
                "content": "The sea is wide, deep and blue, and it moves with the wind, "
                "the moon and the turning of the planet every single day.",
            }
        ],
        "rejected": [{"role": "assistant", "content": "sea"}],
    },
]


def by_hand(model, batch):
    """Per-token log-probs from the plain logits (no fused head), then the method's formula, pair by pair."""
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1]
    token_logps = torch.log_softmax(logits.float(), -1).gather(-1, batch["input_ids"][:, 1:, None])[..., 0]
    mask = batch["completion_mask"][:, 1:].float()
    sums, lengths = (token_logps * mask).sum(-1), mask.sum(-1)
    half = len(sums) // 2
    return token_logps, mask, sums[:half], sums[half:], lengths[:half]


def test_trainer_reports_the_hand_computed_loss(params, tiny_model, tmp_path):
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps(p) + "\n" for p in PAIRS))
    ref_dir = tmp_path / "ref"  # a reference that differs from the policy, so the DPO term is not log 2
    torch.manual_seed(1)
    ref = AutoModelForCausalLM.from_pretrained(tiny_model)
    with torch.no_grad():
        for p in ref.parameters():
            p.add_(0.05 * torch.randn_like(p))
    ref.save_pretrained(ref_dir)
    t = params.train.replace(
        mode="full",
        per_device_train_batch_size=2,
        gradient_accumulation_steps=1,
        max_length=128,
        learning_rate=1e-3,
        logging_steps=1,
    )
    p = dataclasses.replace(params, train=t, beta=0.3, nll_weight=0.7)
    trainer = make_trainer(
        p,
        str(tiny_model),
        str(pairs),
        tmp_path / "ckpt",
        None,
        ref_model=AutoModelForCausalLM.from_pretrained(ref_dir),
    )
    assert trainer.args.nll_weight == 0.7 and "nll_weight" not in vars(trainer)  # the config's field, read by the loss
    batch = next(iter(trainer.get_train_dataloader()))
    policy = AutoModelForCausalLM.from_pretrained(tiny_model)
    token_logps, mask, chosen, rejected, chosen_len = by_hand(policy, batch)
    _, _, ref_chosen, ref_rejected, _ = by_hand(AutoModelForCausalLM.from_pretrained(ref_dir), batch)
    margins = (chosen - ref_chosen) - (rejected - ref_rejected)
    dpo = -torch.nn.functional.logsigmoid(0.3 * margins)
    nll = -chosen / chosen_len
    expected = (dpo + 0.7 * nll).mean().item()
    assert len(set(chosen_len.tolist())) == 2, "the two chosen responses must differ in length"

    trainer.train()
    logged = trainer.state.log_history[0]
    assert logged["loss"] == pytest.approx(expected, rel=1e-4)
    assert logged["nll"] == pytest.approx(nll.mean().item(), rel=1e-4)
    assert logged["dpo_loss"] == pytest.approx(dpo.mean().item(), rel=1e-4)
    assert logged["rewards/margins"] == pytest.approx(0.3 * margins.mean().item(), rel=1e-4, abs=1e-6)
    assert logged["rewards/accuracies"] == pytest.approx((margins > 0).float().mean().item())
    assert "learning_rate" in logged
    # TRL's own "sft" term, a token mean over the whole batch, would give a different value here
    half = len(mask) // 2
    token_mean_nll = -(token_logps[:half] * mask[:half]).sum() / mask[:half].sum()
    assert abs(token_mean_nll.item() - nll.mean().item()) > 1e-2


def test_precomputed_reference_log_probs_train_the_same_weights(params, tiny_model, tmp_path):
    """With the reference scored once before training, the trained weights are those of a run that holds it."""
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps(p) + "\n" for p in PAIRS))
    results = []
    for precompute in (False, True):
        t = params.train.replace(
            mode="full",
            per_device_train_batch_size=2,
            max_length=128,
            gradient_accumulation_steps=1,
            learning_rate=1e-2,
            precompute_ref_log_probs=precompute,
        )
        trainer = make_trainer(
            dataclasses.replace(params, train=t), str(tiny_model), str(pairs), tmp_path / f"ckpt{precompute}", None
        )
        trainer.train()
        assert (trainer.ref_model is None) == precompute
        results.append(
            (
                trainer.state.log_history[0]["loss"],
                {k: v.detach().clone() for k, v in trainer.model.state_dict().items()},
            )
        )
    (loss_held, held), (loss_pre, pre) = results
    assert loss_pre == pytest.approx(loss_held, rel=1e-5)
    for name in held:
        torch.testing.assert_close(pre[name], held[name], rtol=1e-4, atol=1e-6, msg=name)
