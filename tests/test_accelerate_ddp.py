"""A recipe under `accelerate launch` with 2 CPU processes (recipes/accelerate_configs/cpu_ddp.yaml): LoRA on a tiny
pretrained LLaMA with tied embeddings through the shipped LLaMA-3.2-1B config (Seq-VCR + pauses, bf16 autocast, DDP
without unused-parameter search), with activation checkpointing on."""

import json

import pytest
from safetensors.torch import load_file

from hf_seqvcr import build_digit_tokenizer
from launch import accelerate_launch
from tiny import tiny_llama


@pytest.mark.slow
@pytest.mark.multiprocess
def test_two_process_lora_recipe_with_activation_checkpointing(tmp_path):
    tokenizer = build_digit_tokenizer()
    base = tmp_path / "tiny-llama"  # stands in for meta-llama/Llama-3.2-1B (tied embeddings too)
    tiny_llama(tokenizer, tied=True).save_pretrained(base)
    tokenizer.save_pretrained(base)
    output = tmp_path / "run"
    accelerate_launch(
        "recipes/accelerate_configs/cpu_ddp.yaml",
        "recipes/multiplication.py",
        "--config",
        "recipes/multiplication/llama32_1b_lora_5x5.yaml",
        "--use_cpu",
        "true",
        "--model_name_or_path",
        str(base),
        "--output_dir",
        str(output),
        "--build_dataset",
        "multiplication --digits 2 --train-size 64 --validation-size 8 --test-size 8",
        "--max_train_samples",
        "32",
        "--max_test_samples",
        "8",
        "--max_steps",
        "2",
        "--save_steps",
        "1",
        "--per_device_train_batch_size",
        "4",
        "--seqvcr_proj_dim",
        "32",
        "--lora_r",
        "4",
        "--eval_strategy",
        "no",
        "--logging_steps",
        "1",
        "--report_to",
        "none",
        "--activation_checkpointing",
        "true",
    )
    results = json.loads((output / "results.json").read_text())
    assert results["method"] == "seqvcr_pause" and results["num_test_examples"] == 8
    final = load_file(output / "adapter_model.safetensors")
    checkpoint = load_file(output / "checkpoint-1" / "adapter_model.safetensors")
    assert not any("seqvcr_projector" in key for key in final)
    assert any("seqvcr_projector" in key for key in checkpoint)
    assert any("embed_tokens" in key and key.endswith("base_layer.weight") for key in final)
