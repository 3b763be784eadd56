"""`ModelArguments` and loading: a causal LM the user has, or a small one from scratch with the digit tokenizer."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, GPT2Config, PreTrainedModel

from .tokenizer import build_digit_tokenizer

logger = logging.getLogger(__name__)

# From-scratch shapes: "tiny" runs in minutes on a CPU; "gpt2-small" is the paper's shape.
SCRATCH_PRESETS = {
    "tiny": dict(n_embd=128, n_layer=4, n_head=4, n_positions=2048),
    "gpt2-small": dict(n_embd=768, n_layer=12, n_head=12, n_positions=1024),
}


@dataclass
class ModelArguments:
    model_name_or_path: str | None = field(
        default=None,
        metadata={"help": "A causal LM to fine-tune: a Hub id (e.g. openai-community/gpt2, "
                  "meta-llama/Llama-3.2-1B) or a local directory. Leave unset to train from scratch."},
    )
    model_config: str | None = field(
        default=None,
        metadata={"help": "Train from scratch with the digit tokenizer: a preset "
                  f"({', '.join(SCRATCH_PRESETS)}) or a path to a config.json."},
    )
    dtype: str = field(
        default="auto",
        metadata={"help": "Weights dtype when loading a pretrained model.",
                  "choices": ["auto", "float32", "bfloat16", "float16"]},
    )

    def __post_init__(self) -> None:
        if (self.model_name_or_path is None) == (self.model_config is None):
            raise ValueError(
                "Pass exactly one of `--model_name_or_path` (fine-tune a pretrained model) or `--model_config` "
                f"(from scratch: {', '.join(SCRATCH_PRESETS)} or a config.json path)."
            )


def load_model_and_tokenizer(args: ModelArguments):
    """The model and its tokenizer; a pretrained tokenizer without a pad token pads with eos (masked anyway)."""
    if args.model_config is not None:
        tokenizer = build_digit_tokenizer()
        special = dict(
            vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )  # fmt: skip
        if args.model_config in SCRATCH_PRESETS:
            config = GPT2Config(**SCRATCH_PRESETS[args.model_config], **special)
        else:
            config = AutoConfig.from_pretrained(args.model_config, **special)
        model: PreTrainedModel = AutoModelForCausalLM.from_config(config)
        return model, tokenizer
    tokenizer = AutoTokenizer.from_pretrained(args.model_name_or_path)
    if tokenizer.pad_token is None:
        logger.info("The tokenizer has no pad token; using eos (%s) for padding.", tokenizer.eos_token)
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(args.model_name_or_path, dtype=args.dtype)
    return model, tokenizer
