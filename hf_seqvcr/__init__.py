"""Seq-VCR and pause tokens for the Hugging Face Trainer.

Names are imported on first use, so `import hf_seqvcr.losses` (e.g. in a torchrun worker) stays light.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
from typing import TYPE_CHECKING, Any

__version__ = importlib.metadata.version("hf-seqvcr")  # setup.cfg is the one home of the version

_EXPORTS = {
    "EntropyCallback": "callbacks",
    "SeqVCRArguments": "config",
    "SeqVCRConfig": "config",
    "layerwise_entropy": "entropy",
    "matrix_entropy": "entropy",
    "evaluate_exact_match": "evaluation",
    "exact_match_by_length": "evaluation",
    "predict_answers": "evaluation",
    "get_lora_model": "lora",
    "lora_config": "lora",
    "with_seqvcr_modules": "lora",
    "LoopRegularizerOutput": "loopreg",
    "loop_regularizer": "loopreg",
    "LoopLayout": "looped",
    "load_looped": "looped",
    "loop_model": "looped",
    "looped_from_config": "looped",
    "SeqVCRLossOutput": "losses",
    "seq_vcr_loss": "losses",
    "collapse_distances": "oversquashing",
    "pair_distances": "oversquashing",
    "prompt_pairs": "oversquashing",
    "PauseDataCollator": "pause",
    "add_pause_tokens": "pause",
    "pause_token_ids": "pause",
    "restore_pause_settings": "pause",
    "load_pretrained": "pretrained",
    "SeqVCRProjector": "projection",
    "SeqVCRSFTConfig": "sft_config",
    "SeqVCRSFTTrainer": "sft_trainer",
    "attach_projector": "projection",
    "get_projector": "projection",
    "build_digit_tokenizer": "tokenizer",
    "SeqVCRMixin": "trainer",
    "SeqVCRTrainer": "trainer",
}
__all__ = sorted(_EXPORTS)


_EXTRAS = {"sft_config": "trl", "sft_trainer": "trl"}  # modules that need an optional extra, by the extra's name


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'hf_seqvcr' has no attribute {name!r}")
    module = _EXPORTS[name]
    extra = _EXTRAS.get(module)
    if extra is not None and importlib.util.find_spec(extra) is None:
        raise ImportError(f'`hf_seqvcr.{name}` needs {extra}: `pip install "hf-seqvcr[{extra}]"`.')
    return getattr(importlib.import_module(f".{module}", __name__), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])


if TYPE_CHECKING:
    from .callbacks import EntropyCallback
    from .config import SeqVCRArguments, SeqVCRConfig
    from .entropy import layerwise_entropy, matrix_entropy
    from .evaluation import evaluate_exact_match, exact_match_by_length, predict_answers
    from .looped import LoopLayout, load_looped, loop_model, looped_from_config
    from .loopreg import LoopRegularizerOutput, loop_regularizer
    from .lora import get_lora_model, lora_config, with_seqvcr_modules
    from .losses import SeqVCRLossOutput, seq_vcr_loss
    from .oversquashing import collapse_distances, pair_distances, prompt_pairs
    from .pause import PauseDataCollator, add_pause_tokens, pause_token_ids, restore_pause_settings
    from .pretrained import load_pretrained
    from .projection import SeqVCRProjector, attach_projector, get_projector
    from .sft_config import SeqVCRSFTConfig
    from .sft_trainer import SeqVCRSFTTrainer
    from .tokenizer import build_digit_tokenizer
    from .trainer import SeqVCRMixin, SeqVCRTrainer
