"""LoRA through peft (hf_seqvcr/lora.py) on a tiny LLaMA: what trains, what stays frozen, what the adapter keeps, and
that base + adapter reloads to the trained model's logits."""

import importlib.util

import pytest
import torch
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors.torch import load_file

from hf_seqvcr import (
    SeqVCRTrainer,
    add_pause_tokens,
    attach_projector,
    build_digit_tokenizer,
    get_projector,
    pause_token_ids,
)
from hf_seqvcr.lora import get_lora_model, lora_config, with_seqvcr_modules
from tiny import addition_splits, lora_arguments, sgd_config, tiny_llama, tiny_lora

PAUSES = 2
TRAINED = ("lora_", "trainable_tokens_delta", "seqvcr_projector.modules_to_save")


@pytest.fixture
def rows():
    train, _ = addition_splits(digits=2, train=8, test=0)
    return train


def base_with_pauses(tied: bool, resize_seed: int = 0):
    """The "pretrained" base (no pause tokens), then the recipe's resize; `resize_seed` draws the new rows."""
    tokenizer = build_digit_tokenizer()
    base = tiny_llama(tokenizer, tied=tied)
    torch.manual_seed(resize_seed)
    return add_pause_tokens(tokenizer, base, PAUSES)


def lora_trainer(tmp_path, rows, *, tied: bool = False, seed: int = 0, **overrides) -> SeqVCRTrainer:
    """The recipe's order: pause tokens, projection head, then peft."""
    tokenizer, model = base_with_pauses(tied)
    args = sgd_config(tmp_path, num_pause_tokens=PAUSES, per_device_train_batch_size=2, **overrides)
    torch.manual_seed(seed)  # head and LoRA initialisation
    attach_projector(model, args.seqvcr_layers, args.seqvcr_proj_dim, args.seqvcr_proj_type)
    model = get_lora_model(model, tokenizer, tiny_lora())
    return SeqVCRTrainer(model=model, args=args, train_dataset=rows, processing_class=tokenizer)


def snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def effective_embeddings(model: PeftModel) -> tuple[torch.Tensor, torch.Tensor]:
    """Input and output embedding matrices as the forward sees them (peft swaps in the trained pause rows)."""
    with torch.no_grad():
        vocab = model.get_input_embeddings()(torch.arange(model.config.vocab_size))
        hidden = model.config.hidden_size
        output = model.get_output_embeddings()(torch.eye(hidden)).T  # rows of the lm_head weight
    return vocab, output


@pytest.mark.parametrize("tied", [False, True], ids=["untied", "tied"])
def test_only_lora_head_and_pause_rows_train(tmp_path, rows, tied):
    trainer = lora_trainer(tmp_path, rows, tied=tied, max_steps=2)  # LoRA's A gets a gradient once B is non-zero
    model = trainer.model
    before, (embed_before, out_before) = snapshot(model), effective_embeddings(model)
    trainer.train()
    after, (embed_after, out_after) = snapshot(model), effective_embeddings(model)

    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(any(part in name for part in TRAINED) for name in trainable)
    assert any("seqvcr_projector" in name for name in trainable)
    for name in before:
        changed = not torch.equal(before[name], after[name])
        expected = name in trainable
        assert changed == expected, f"{name}: changed={changed}, trainable={name in trainable}"

    pause = sorted(set(pause_token_ids(trainer.processing_class, PAUSES)))
    others = [i for i in range(len(embed_before)) if i not in pause]
    assert torch.equal(embed_before[others], embed_after[others])
    assert not torch.equal(embed_before[pause], embed_after[pause])
    assert torch.equal(out_before[others], out_after[others])
    if tied:  # peft ties the output rows to the trained input rows
        torch.testing.assert_close(out_after[pause], embed_after[pause], rtol=0, atol=0)


@pytest.mark.parametrize("tied", [False, True], ids=["untied", "tied"])
def test_final_adapter_drops_the_head_and_reloads_to_identical_logits(tmp_path, rows, tied):
    trainer = lora_trainer(tmp_path, rows, tied=tied, max_steps=2)
    trainer.train()
    trainer.save_model(str(tmp_path / "final"))
    saved = load_file(tmp_path / "final" / "adapter_model.safetensors")
    assert not any("seqvcr_projector" in key for key in saved)
    assert any("embed_tokens" in key and key.endswith("base_layer.weight") for key in saved)  # the resized rows

    _, base = base_with_pauses(tied, resize_seed=1)  # other random rows for the pause tokens
    reloaded = PeftModel.from_pretrained(base, str(tmp_path / "final")).eval()
    batch = trainer.data_collator(list(rows.select(range(4))))
    assert (batch["input_ids"] == pause_token_ids(trainer.processing_class, PAUSES)[0]).any()
    trained = trainer.model.eval()
    with torch.no_grad():
        expected = trained(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        actual = reloaded(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        base_only = base_with_pauses(tied, resize_seed=1)[1](input_ids=batch["input_ids"]).logits
    torch.testing.assert_close(actual, expected, rtol=1e-6, atol=1e-6)
    assert not torch.allclose(base_only, expected, atol=1e-3)


def test_checkpoint_keeps_the_head_and_resume_restores_it(tmp_path, rows):
    overrides = dict(max_steps=2, save_strategy="steps", save_steps=1)
    trainer = lora_trainer(tmp_path, rows, **overrides)
    trainer.train()
    checkpoint = tmp_path / "out" / "checkpoint-1"
    assert any("seqvcr_projector" in key for key in load_file(checkpoint / "adapter_model.safetensors"))

    resumed = lora_trainer(tmp_path, rows, seed=1, **overrides)  # another head and LoRA initialisation
    resumed.train(resume_from_checkpoint=str(checkpoint))
    expected, actual = snapshot(trainer.model), snapshot(resumed.model)
    for name, p in trainer.model.named_parameters():
        if p.requires_grad:
            torch.testing.assert_close(actual[name], expected[name], rtol=1e-6, atol=1e-7, msg=name)


def test_activation_checkpointing_gives_the_same_update(tmp_path, rows):
    plain = lora_trainer(tmp_path, rows, max_steps=2)
    plain.train()
    checkpointed = lora_trainer(tmp_path, rows, max_steps=2, activation_checkpointing=True)
    checkpointed.train()
    assert checkpointed.model.base_model.model.model.layers[0].gradient_checkpointing
    for name, value in snapshot(checkpointed.model).items():
        torch.testing.assert_close(value, snapshot(plain.model)[name], rtol=1e-5, atol=1e-7, msg=name)


def test_head_left_out_of_modules_to_save_is_rejected(tmp_path, rows):
    tokenizer, model = base_with_pauses(tied=False)
    attach_projector(model, [-1], 16, "linear")
    model = get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj"], task_type="CAUSAL_LM"))
    assert get_projector(model) is not None
    with pytest.raises(ValueError, match=r"projection head is frozen.*modules_to_save"):
        SeqVCRTrainer(model=model, args=sgd_config(tmp_path), train_dataset=rows, processing_class=tokenizer)


def test_seqvcr_modules_add_head_and_pause_rows_to_any_config_without_changing_it():
    config = lora_config(target_modules=["all-linear"])
    assert config.target_modules == "all-linear"
    added = with_seqvcr_modules(config, [7, 7, 5], train_projector=True)
    assert added.modules_to_save == ["seqvcr_projector"] and added.trainable_token_indices == [5, 7]
    assert config.modules_to_save is None and config.trainable_token_indices is None  # the caller's config is kept
    plain = with_seqvcr_modules(config, [], train_projector=False)
    assert plain.modules_to_save is None and plain.trainable_token_indices is None
    users = LoraConfig(modules_to_save=["lm_head"], trainable_token_indices={"embed_tokens": [3]})
    merged = with_seqvcr_modules(users, [5], train_projector=True)
    assert merged.modules_to_save == ["lm_head", "seqvcr_projector"]
    assert merged.trainable_token_indices == {"embed_tokens": [3, 5]}


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(lora_r=0), "--lora_r"),
        (dict(lora_alpha=-1), "--lora_alpha"),
        (dict(lora_dropout=1.0), "--lora_dropout"),
        (dict(use_peft=False, load_in_4bit=True), "--load_in_4bit.*add `--use_peft`"),
        (dict(model_name_or_path=None, model_config="tiny"), "--use_peft.*--model_name_or_path"),
    ],
)
def test_bad_peft_arguments_are_rejected_with_the_flag(overrides, message):
    with pytest.raises(ValueError, match=message):
        lora_arguments(**overrides)


def test_4bit_without_a_gpu_or_bitsandbytes_names_the_flag():
    if torch.cuda.is_available() and importlib.util.find_spec("bitsandbytes") is not None:
        pytest.skip("this machine can load 4-bit weights")
    with pytest.raises(ValueError, match=r"--load_in_4bit.*(CUDA|bitsandbytes)"):
        lora_arguments(load_in_4bit=True)
