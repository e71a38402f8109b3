"""trl.DPOConfig with lidr's own training fields, added as the alignment handbook adds fields: a config subclass.

Imports TRL: lidr/train.py imports this module only when it builds a config.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from trl import DPOConfig


@dataclass
class LidrDPOConfig(DPOConfig):
    """DPOConfig, and the weight of the NLL term of lidr's loss (`LidrDPOTrainer` reads `args.nll_weight`)."""

    nll_weight: float = field(
        default=1.0,
        metadata={
            "help": "alpha: weight of the length-normalised NLL of the chosen response added to the DPO loss "
            "(docs/method.md, step 7); 0 gives plain DPO."
        },
    )

    def __post_init__(self):
        if self.nll_weight < 0:
            raise ValueError(f"nll_weight must be >= 0, got {self.nll_weight}")
        super().__post_init__()
