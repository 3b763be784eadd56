"""Seq-VCR and pause tokens for the Hugging Face Trainer."""

from .config import SeqVCRConfig
from .evaluation import evaluate_exact_match, predict_answers
from .losses import SeqVCRLossOutput, seq_vcr_loss
from .pause import PauseDataCollator, add_pause_tokens, pause_token_ids, restore_pause_settings
from .projection import SeqVCRProjector, attach_projector, get_projector
from .tokenizer import build_digit_tokenizer
from .trainer import SeqVCRMixin, SeqVCRTrainer

__version__ = "0.1.0"

__all__ = [
    "PauseDataCollator",
    "SeqVCRConfig",
    "SeqVCRLossOutput",
    "SeqVCRMixin",
    "SeqVCRProjector",
    "SeqVCRTrainer",
    "add_pause_tokens",
    "attach_projector",
    "build_digit_tokenizer",
    "evaluate_exact_match",
    "get_projector",
    "pause_token_ids",
    "predict_answers",
    "restore_pause_settings",
    "seq_vcr_loss",
]
