"""`SeqVCRSFTConfig`: TRL's `SFTConfig`, every default kept, plus the Seq-VCR, pause-token and loop-regularizer
fields."""

from __future__ import annotations

from dataclasses import dataclass

from trl import SFTConfig

from .config import SeqVCRArguments


@dataclass
class SeqVCRSFTConfig(SeqVCRArguments, SFTConfig):
    """Arguments for `SeqVCRSFTTrainer`: `SFTConfig` (its defaults on purpose: learning rate, logging, gradient
    checkpointing, bf16, ...) and `SeqVCRArguments`. `use_seqvcr` and `num_pause_tokens` are the two switches."""
