"""lidr: Language Imbalance Driven Rewarding (Yang et al., ICLR 2025) as a reproducible DVC pipeline."""

__version__ = "0.1.0"
