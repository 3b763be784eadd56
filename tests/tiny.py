"""Tiny models and data built in-process: tests never download anything."""

from __future__ import annotations

import random
from pathlib import Path

from datasets import Dataset
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerBase

from hf_seqvcr import SeqVCRConfig
from hf_seqvcr.scripts.models import ModelArguments


def _sgd_settings(tmp_path: Path) -> dict:
    return dict(
        output_dir=str(tmp_path / "out"),
        per_device_train_batch_size=4,
        learning_rate=0.1,
        optim="sgd",
        max_steps=1,
        lr_scheduler_type="constant",
        report_to=[],
        save_strategy="no",
        logging_steps=1,
        use_cpu=True,
        train_sampling_strategy="sequential",
        seqvcr_proj_dim=16,
        disable_tqdm=True,
        eval_exact_match=False,
    )


def sgd_config(tmp_path: Path, **overrides) -> SeqVCRConfig:
    """Plain SGD steps on the CPU over rows in order: updates that tests can compare exactly."""
    return SeqVCRConfig(**{**_sgd_settings(tmp_path), **overrides})


def sft_config(tmp_path: Path, **overrides):
    """`sgd_config`'s steps as a `SeqVCRSFTConfig`; TRL's other defaults kept (gradient checkpointing on), bf16 off
    for the CPU."""
    from hf_seqvcr import SeqVCRSFTConfig

    return SeqVCRSFTConfig(**{**_sgd_settings(tmp_path), "bf16": False, **overrides})


def lora_arguments(**overrides) -> ModelArguments:
    """`--use_peft` with rank 4 and no dropout, for the tiny models (the model name is only recorded)."""
    return ModelArguments(
        **{
            "model_name_or_path": "tiny-llama",
            "use_peft": True,
            "lora_r": 4,
            "lora_alpha": 8,
            "lora_dropout": 0.0,
            **overrides,
        }
    )


def tiny_lora():
    """Rank 4, no dropout: the adapter the tiny models' LoRA tests train."""
    from hf_seqvcr.lora import lora_config

    return lora_config(r=4, alpha=8, dropout=0.0)


def tiny_llama(
    tokenizer: PreTrainedTokenizerBase,
    *,
    hidden: int = 64,
    layers: int = 2,
    seed: int = 0,
    tied: bool = False,
    positions: int = 128,
):
    import torch

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=positions,
        tie_word_embeddings=tied,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    return LlamaForCausalLM(config)


def tiny_gpt2(tokenizer: PreTrainedTokenizerBase, *, hidden: int = 32, layers: int = 2, seed: int = 0):
    import torch

    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_embd=hidden,
        n_layer=layers,
        n_head=2,
        n_positions=128,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    return GPT2LMHeadModel(config)


def digits_lsd_first(n: int, width: int) -> str:
    """Deng et al.'s convention: least-significant digit first, space separated."""
    return " ".join(str(n).zfill(width)[::-1])


def addition_rows(pairs: list[tuple[int, int]], digits: int) -> list[dict[str, str]]:
    return [
        {
            "question": f"{digits_lsd_first(a, digits)} + {digits_lsd_first(b, digits)}",
            "cot": "",
            "answer": digits_lsd_first(a + b, digits + 1),
        }
        for a, b in pairs
    ]


def addition_splits(digits: int = 2, train: int = 2000, test: int = 200, seed: int = 0) -> tuple[Dataset, Dataset]:
    """Disjoint train/test operand pairs of `digits`-digit addition."""
    top = 10**digits
    pairs = [(a, b) for a in range(top) for b in range(top)]
    random.Random(seed).shuffle(pairs)
    return (
        Dataset.from_list(addition_rows(pairs[:train], digits)),
        Dataset.from_list(addition_rows(pairs[train : train + test], digits)),
    )
