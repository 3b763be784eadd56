"""`ModelArguments` and loading: a causal LM the user has, or a small one from scratch with the digit tokenizer."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field

import torch
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    BitsAndBytesConfig,
    GPT2Config,
    PreTrainedModel,
)

from ..looped import LAYOUT_KEY, LoopLayout, load_looped, loop_model
from ..pretrained import load_tokenizer
from ..tokenizer import build_digit_tokenizer

# From-scratch shapes: "tiny" runs in minutes on a CPU; "gpt2-small" is the paper's shape.
SCRATCH_PRESETS = {
    "tiny": dict(n_embd=128, n_layer=4, n_head=4, n_positions=2048),
    "gpt2-small": dict(n_embd=768, n_layer=12, n_head=12, n_positions=1024),
}


@dataclass
class ModelArguments:
    model_name_or_path: str | None = field(
        default=None,
        metadata={
            "help": "A causal LM to fine-tune: a Hub id (e.g. openai-community/gpt2, "
            "meta-llama/Llama-3.2-1B) or a local directory. Leave unset to train from scratch."
        },
    )
    model_config: str | None = field(
        default=None,
        metadata={
            "help": "Train from scratch with the digit tokenizer: a preset "
            f"({', '.join(SCRATCH_PRESETS)}) or a path to a config.json."
        },
    )
    dtype: str = field(
        default="auto",
        metadata={
            "help": "Weights dtype when loading a pretrained model.",
            "choices": ["auto", "float32", "bfloat16", "float16"],
        },
    )
    use_peft: bool = field(
        default=False,
        metadata={
            "help": "Train a LoRA adapter (peft) instead of all weights. The Seq-VCR head and the pause-token "
            "embedding rows train with it; the adapter is saved with the resized embeddings."
        },
    )
    lora_r: int = field(default=16, metadata={"help": "LoRA rank (with --use_peft)."})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA scaling numerator: updates are scaled by alpha / r."})
    lora_dropout: float = field(default=0.05, metadata={"help": "Dropout on the LoRA input, in [0, 1)."})
    lora_target_modules: list[str] | None = field(
        default=None,
        metadata={
            "help": "Module names that get LoRA, e.g. q_proj k_proj v_proj o_proj, or all-linear. Default: "
            "peft's choice for the architecture (q_proj v_proj for LLaMA)."
        },
    )
    load_in_4bit: bool = field(
        default=False,
        metadata={
            "help": "QLoRA: load the base weights in 4-bit NF4 with bitsandbytes (needs --use_peft, a CUDA GPU "
            "and `pip install bitsandbytes`)."
        },
    )

    looped: str | None = field(
        default=None,
        metadata={
            "help": "Loop the decoder (Saunshi et al., 2025): 'k,L' applies one block of k layers L times, "
            "'a,k,L,b' adds a unique layers before and b after it (middle looping). From scratch the model "
            "gets exactly the unique layers; a pretrained model must have that many. (k⊗1) is the iso-param "
            "baseline of (k⊗L), (kL⊗1) its iso-FLOP baseline."
        },
    )

    def __post_init__(self) -> None:
        _ = self.loop_layout  # a malformed --looped fails here, before any work
        if (self.model_name_or_path is None) == (self.model_config is None):
            raise ValueError(
                "Pass exactly one of `--model_name_or_path` (fine-tune a pretrained model) or `--model_config` "
                f"(from scratch: {', '.join(SCRATCH_PRESETS)} or a config.json path)."
            )
        if self.use_peft:
            self._check_peft()
        elif self.load_in_4bit:
            raise ValueError(
                "`--load_in_4bit` quantizes the base weights, which then cannot be trained directly; "
                "add `--use_peft` to train a LoRA adapter on them (QLoRA)."
            )

    @property
    def loop_layout(self) -> LoopLayout | None:
        """`--looped` as a layout: 'k,L' or 'prefix,k,L,suffix'."""
        if self.looped is None:
            return None
        parts = self.looped.replace(" ", "").split(",")
        if len(parts) not in (2, 4) or not all(part.isdigit() for part in parts):
            raise ValueError(
                f"`--looped` must be 'k,L' or 'prefix,k,L,suffix' (non-negative integers), got "
                f"{self.looped!r}; e.g. --looped 2,3 applies 2 layers 3 times."
            )
        prefix, block, loops, suffix = (0, *map(int, parts), 0) if len(parts) == 2 else map(int, parts)
        try:
            return LoopLayout(prefix=prefix, block=block, loops=loops, suffix=suffix)
        except ValueError as error:
            raise ValueError(f"`--looped {self.looped}`: {error}") from None

    def _check_peft(self) -> None:
        if self.model_config is not None:
            raise ValueError(
                "`--use_peft` adapts a pretrained model; pass `--model_name_or_path`, or drop "
                "`--use_peft` to train the from-scratch `--model_config` fully."
            )
        if self.lora_r <= 0:
            raise ValueError(f"`--lora_r` must be > 0, got {self.lora_r}; 8 to 64 are usual.")
        if self.lora_alpha <= 0:
            raise ValueError(f"`--lora_alpha` must be > 0, got {self.lora_alpha}; 2 × lora_r is usual.")
        if not 0 <= self.lora_dropout < 1:
            raise ValueError(f"`--lora_dropout` must be in [0, 1), got {self.lora_dropout}.")
        if self.load_in_4bit:
            if not torch.cuda.is_available():
                raise ValueError(
                    "`--load_in_4bit` needs a CUDA GPU (bitsandbytes 4-bit kernels); drop it to train "
                    "LoRA on full-precision weights."
                )
            if importlib.util.find_spec("bitsandbytes") is None:
                raise ValueError("`--load_in_4bit` needs bitsandbytes: `pip install bitsandbytes`, or drop the flag.")


def load_model_and_tokenizer(args: ModelArguments):
    """The model and its tokenizer; a pretrained tokenizer without a pad token pads with eos (masked anyway).

    With `--looped` the model is looped after it is built; a looped checkpoint is reloaded looped.
    """
    layout = args.loop_layout
    if args.model_config is not None:
        tokenizer = build_digit_tokenizer()
        special = dict(
            vocab_size=len(tokenizer),
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
        if args.model_config in SCRATCH_PRESETS:
            config = GPT2Config(**SCRATCH_PRESETS[args.model_config], **special)
        else:
            config = AutoConfig.from_pretrained(args.model_config, **special)
        if layout is not None:
            config.num_hidden_layers = layout.unique_layers
        model: PreTrainedModel = AutoModelForCausalLM.from_config(config)
        return (model if layout is None else loop_model(model, layout)), tokenizer
    tokenizer = load_tokenizer(args.model_name_or_path)
    quantization = _four_bit_config() if args.load_in_4bit else None
    if getattr(AutoConfig.from_pretrained(args.model_name_or_path), LAYOUT_KEY, None) is not None:
        if layout is not None:
            raise ValueError(f"{args.model_name_or_path} is already looped; drop --looped to train it as it is.")
        return load_looped(args.model_name_or_path, dtype=args.dtype, quantization_config=quantization), tokenizer
    model = AutoModelForCausalLM.from_pretrained(
        args.model_name_or_path, dtype=args.dtype, quantization_config=quantization
    )
    return (model if layout is None else loop_model(model, layout)), tokenizer


def _four_bit_config() -> BitsAndBytesConfig:
    """QLoRA's settings (Dettmers et al., 2023): NF4 with double quantization, bf16 compute."""
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16,
    )
