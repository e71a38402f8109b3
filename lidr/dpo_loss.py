"""The training objective (docs/method.md, step 7) in plain torch (no TRL), shared by training and benchmarks.

    L = -log sigmoid(beta * (log pi(y_w|x)/pi_ref(y_w|x) - log pi(y_l|x)/pi_ref(y_l|x)))
        - alpha * log pi(y_w|x) / |y_w|

averaged over pairs. The NLL term is normalised per sequence by its own length in tokens, then
averaged over pairs (Iterative RPO). TRL's "sft" loss instead takes the mean over all chosen tokens
of the batch, which weights long responses more when lengths differ; we do not use it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class DpoNllLoss:
    """The loss and its parts, each averaged over the pairs of the batch."""

    loss: torch.Tensor  # dpo + alpha * nll, the value that is back-propagated
    dpo: torch.Tensor  # -log sigmoid(beta * margin)
    nll: torch.Tensor  # -log pi(y_w|x) / |y_w|
    chosen_rewards: torch.Tensor  # per pair: beta * log pi(y_w|x)/pi_ref(y_w|x), detached
    rejected_rewards: torch.Tensor  # per pair, detached


def sequence_logps(per_token_logps: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum of the log-probabilities of the masked (response) tokens of each row, and the number of those tokens."""
    mask = mask.to(per_token_logps.dtype)
    return (per_token_logps * mask).sum(dim=-1), mask.sum(dim=-1)


def dpo_nll_loss(
    chosen_logps: torch.Tensor,
    rejected_logps: torch.Tensor,
    ref_chosen_logps: torch.Tensor,
    ref_rejected_logps: torch.Tensor,
    chosen_lengths: torch.Tensor,
    beta: float,
    alpha: float,
) -> DpoNllLoss:
    """The loss of docs/method.md, step 7, from per-pair summed log-probabilities (shape [pairs])."""
    chosen_logratios = chosen_logps - ref_chosen_logps
    rejected_logratios = rejected_logps - ref_rejected_logps
    dpo = -F.logsigmoid(beta * (chosen_logratios - rejected_logratios))
    nll = -chosen_logps / chosen_lengths.to(chosen_logps.dtype).clamp(min=1.0)
    return DpoNllLoss(
        loss=(dpo + alpha * nll).mean(),
        dpo=dpo.mean(),
        nll=nll.mean(),
        chosen_rewards=beta * chosen_logratios.detach(),
        rejected_rewards=beta * rejected_logratios.detach(),
    )
