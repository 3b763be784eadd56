"""SeqVCRSFTTrainer: Seq-VCR and pause tokens inside TRL's SFTTrainer, on its dataset kinds, with its fused LM head,
gradient accumulation and checkpointing, `peft_config`, checkpoints and evaluation; and the same mechanism under a
Trainer subclass that runs its own forward."""

import copy
import dataclasses
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from datasets import Dataset
from peft import LoraConfig, PeftModel
from transformers import Trainer
from trl import SFTConfig, SFTTrainer
from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

import hf_seqvcr
from hf_seqvcr import (
    SeqVCRArguments,
    SeqVCRMixin,
    SeqVCRSFTConfig,
    SeqVCRSFTTrainer,
    SeqVCRTrainer,
    add_pause_tokens,
    build_digit_tokenizer,
    get_projector,
    pause_token_ids,
)
from tiny import addition_splits, sft_config, sgd_config, tiny_llama

PAUSES = 2
CHAT_TEMPLATE = (  # role markers are special tokens (the digit tokenizer has no letters); assistant turns are marked
    "{% for m in messages %}<|{{ m['role'] }}|>{% if m['role'] == 'assistant' %}{% generation %}{{ m['content'] }}"
    "{{ eos_token }}{% endgeneration %}{% else %}{{ m['content'] }}{{ eos_token }}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
BACKBONE = "model.layers.1.mlp.up_proj.weight"


@pytest.fixture
def qa_rows():
    return addition_splits(digits=2, train=8, test=0)[0]


@pytest.fixture
def tokenizer():
    tokenizer = build_digit_tokenizer()
    tokenizer.add_special_tokens({"additional_special_tokens": ["<|user|>", "<|assistant|>"]})
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def prompt_completion(rows) -> Dataset:
    return Dataset.from_list([{"prompt": r["question"], "completion": r["answer"]} for r in rows])


def conversational(rows) -> Dataset:
    return Dataset.from_list(
        [
            {
                "prompt": [{"role": "user", "content": r["question"]}],
                "completion": [{"role": "assistant", "content": r["answer"]}],
            }
            for r in rows
        ]
    )


def messages(rows) -> Dataset:
    return Dataset.from_list(
        [
            {"messages": [{"role": "user", "content": r["question"]}, {"role": "assistant", "content": r["answer"]}]}
            for r in rows
        ]
    )


def train(tmp_path, tokenizer, rows, *, trainer_class=SeqVCRSFTTrainer, config=sft_config, **overrides):
    """One run from the same initial weights; returns the trainer (its model holds the trained weights)."""
    tokenizer = copy.deepcopy(tokenizer)
    args = config(tmp_path, **{"num_pause_tokens": PAUSES, **overrides})
    trainer = trainer_class(model=tiny_llama(tokenizer), args=args, train_dataset=rows, processing_class=tokenizer)
    trainer.train()
    return trainer


def backbone(trainer) -> torch.Tensor:
    return dict(trainer.model.named_parameters())[BACKBONE].detach().clone()


def test_two_names_change_an_sft_script(tmp_path, tokenizer, qa_rows):
    """Prompt/completion rows, no collator: pauses between prompt and completion without loss, `ce` equal to plain
    SFTTrainer's loss on the same batch, TRL's metrics kept, and a backbone update that the regularizer changes."""
    rows = prompt_completion(qa_rows.select(range(4)))
    ours = train(tmp_path, tokenizer, rows)
    batch = next(iter(ours.get_train_dataloader()))
    pause = pause_token_ids(ours.processing_class, PAUSES)
    for ids, labels in zip(batch["input_ids"].tolist(), batch["labels"].tolist(), strict=True):
        start = next(i for i, label in enumerate(labels) if label != -100)  # the completion's first token
        assert ids[start - PAUSES : start] == pause and pause[0] not in ids[: start - PAUSES] + ids[start:]
    logged = ours.state.log_history[0]
    assert {"ce", "seqvcr", "seqvcr_var", "seqvcr_cov", "entropy", "mean_token_accuracy", "num_tokens"} <= logged.keys()
    assert logged["loss"] == pytest.approx(logged["ce"] + logged["seqvcr"], rel=1e-5)

    plain_tokenizer = copy.deepcopy(tokenizer)
    model = tiny_llama(plain_tokenizer)
    add_pause_tokens(plain_tokenizer, model, PAUSES)  # what the trainer did, by hand, with the pauses typed in
    typed = Dataset.from_list([{**row, "prompt": row["prompt"] + "<pause>" * PAUSES} for row in rows])
    plain_args = SFTConfig(**{f.name: getattr(ours.args, f.name) for f in dataclasses.fields(SFTConfig) if f.init})
    plain = SFTTrainer(model=model, args=plain_args, train_dataset=typed, processing_class=plain_tokenizer)
    plain.train()
    assert logged["ce"] == plain.state.log_history[0]["loss"]

    off = train(tmp_path, tokenizer, rows, use_seqvcr=False)
    assert not torch.allclose(backbone(ours), backbone(off))  # the control: the regularizer reaches the backbone


def test_a_collator_the_user_passes_is_kept(tmp_path, tokenizer, qa_rows):
    tokenizer = copy.deepcopy(tokenizer)
    theirs = DataCollatorForLanguageModeling(pad_token_id=tokenizer.pad_token_id)
    trainer = SeqVCRSFTTrainer(
        model=tiny_llama(tokenizer),
        args=sft_config(tmp_path, num_pause_tokens=PAUSES),
        data_collator=theirs,
        train_dataset=messages(qa_rows.select(range(4))),
        processing_class=tokenizer,
    )
    assert trainer.data_collator.collator is theirs  # wrapped only to keep the pauses out of the loss
    batch = next(iter(trainer.get_train_dataloader()))
    pauses = torch.isin(batch["input_ids"], torch.tensor(pause_token_ids(tokenizer, PAUSES)))
    assert pauses.any() and (batch["labels"][pauses] == -100).all()


def test_question_answer_rows_take_seqvcr_trainers_step(tmp_path, tokenizer, qa_rows):
    rows = qa_rows.select(range(4))
    sft = train(tmp_path, tokenizer, rows)
    reference = train(tmp_path, tokenizer, rows, trainer_class=SeqVCRTrainer, config=sgd_config)
    batch = next(iter(sft.get_train_dataloader()))
    expected = reference.data_collator(list(rows))
    for key in ("input_ids", "labels", "attention_mask"):
        assert torch.equal(batch[key], expected[key]), key
    for name, value in sft.model.named_parameters():
        torch.testing.assert_close(
            value, dict(reference.model.named_parameters())[name], rtol=1e-5, atol=1e-6, msg=name
        )
    assert sft.state.log_history[0]["seqvcr"] == pytest.approx(reference.state.log_history[0]["seqvcr"], rel=1e-5)


@pytest.mark.parametrize("kind", [conversational, messages], ids=["prompt_completion", "messages"])
def test_conversational_rows_get_pauses_after_the_generation_prompt(tmp_path, tokenizer, qa_rows, kind):
    rows = kind(qa_rows.select(range(4)))
    ours = train(tmp_path, tokenizer, rows, assistant_only_loss=kind is messages)
    batch = next(iter(ours.get_train_dataloader()))
    assistant = ours.processing_class.convert_tokens_to_ids("<|assistant|>")
    pause = pause_token_ids(ours.processing_class, PAUSES)
    for ids, labels in zip(batch["input_ids"].tolist(), batch["labels"].tolist(), strict=True):
        header = ids.index(assistant)
        assert ids[header + 1 : header + 1 + PAUSES] == pause
        assert all(label == -100 for label in labels[: header + 1 + PAUSES])
        assert labels[header + 1 + PAUSES] != -100  # the answer's first token carries loss
    off = train(tmp_path, tokenizer, rows, use_seqvcr=False, assistant_only_loss=kind is messages)
    assert not torch.allclose(backbone(ours), backbone(off))


def test_pauses_never_carry_loss_when_the_whole_chat_does(tmp_path, tokenizer, qa_rows):
    ours = train(tmp_path, tokenizer, messages(qa_rows.select(range(4))))  # assistant_only_loss off: all tokens
    batch = next(iter(ours.get_train_dataloader()))
    pauses = torch.isin(batch["input_ids"], torch.tensor(pause_token_ids(ours.processing_class, PAUSES)))
    assert pauses.any() and (batch["labels"][pauses] == -100).all()
    assert (batch["labels"][~pauses & (batch["attention_mask"] == 1)] != -100).all()


def test_gradient_accumulation_averages_the_regularizer(tmp_path, tokenizer, qa_rows):
    pair = prompt_completion(qa_rows.select(range(2)))
    once = train(tmp_path, tokenizer, pair, per_device_train_batch_size=2)
    twice = Dataset.from_list(list(pair) * 2)
    accumulated = train(tmp_path, tokenizer, twice, per_device_train_batch_size=2, gradient_accumulation_steps=2)
    torch.testing.assert_close(backbone(accumulated), backbone(once), rtol=1e-5, atol=1e-7)
    head = get_projector(accumulated.model).heads[0].weight
    torch.testing.assert_close(head, get_projector(once.model).heads[0].weight, rtol=1e-5, atol=1e-7)


def test_gradient_checkpointing_gives_the_same_step(tmp_path, tokenizer, qa_rows):
    rows = prompt_completion(qa_rows.select(range(4)))
    checkpointed = train(tmp_path, tokenizer, rows, gradient_checkpointing=True)
    plain = train(tmp_path, tokenizer, rows, gradient_checkpointing=False)
    assert checkpointed.model.model.layers[0].gradient_checkpointing
    torch.testing.assert_close(backbone(checkpointed), backbone(plain), rtol=1e-5, atol=1e-7)


def test_peft_config_trains_lora_head_and_pause_rows_and_reloads_exactly(tmp_path, tokenizer, qa_rows):
    rows = prompt_completion(qa_rows.select(range(4)))
    lora = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    user_tokenizer = copy.deepcopy(tokenizer)
    torch.manual_seed(0)
    base = tiny_llama(user_tokenizer)
    trainer = SeqVCRSFTTrainer(
        model=base,
        args=sft_config(tmp_path, num_pause_tokens=PAUSES, max_steps=2),
        train_dataset=rows,
        processing_class=user_tokenizer,
        peft_config=lora,
    )
    assert lora.modules_to_save is None and lora.trainable_token_indices is None  # the user's config is kept
    model = trainer.model
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainer.train()
    changed = {n for n, p in model.named_parameters() if not torch.equal(before[n], p)}
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert changed == trainable
    assert any("lora_A" in n for n in changed) and any("lora_B" in n for n in changed)
    assert any("seqvcr_projector.modules_to_save" in n for n in changed)
    assert any("trainable_tokens_delta" in n for n in changed)

    trainer.save_model(str(tmp_path / "adapter"))
    fresh = tiny_llama(tokenizer)
    fresh.resize_token_embeddings(len(user_tokenizer))  # a user's reload: the base, grown to the saved tokenizer
    reloaded = PeftModel.from_pretrained(fresh, str(tmp_path / "adapter")).eval()
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(4)])
    with torch.no_grad():
        expected = model.eval()(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        actual = reloaded(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    torch.testing.assert_close(actual, expected, rtol=1e-6, atol=1e-6)


def test_checkpoint_resume_is_bit_exact_and_writes_a_card(tmp_path, tokenizer, qa_rows):
    rows = prompt_completion(qa_rows.select(range(4)))
    overrides = dict(max_steps=2, per_device_train_batch_size=2, save_strategy="steps", save_steps=1)
    straight = train(tmp_path / "a", tokenizer, rows, **overrides)
    checkpoint = tmp_path / "a" / "out" / "checkpoint-1"
    assert "seqvcr_pause" in (tmp_path / "a" / "out" / "README.md").read_text()  # the method, inferred

    tokenizer_copy = copy.deepcopy(tokenizer)
    args = sft_config(tmp_path / "b", num_pause_tokens=PAUSES, **overrides)
    resumed = SeqVCRSFTTrainer(
        model=tiny_llama(tokenizer_copy, seed=1), args=args, train_dataset=rows, processing_class=tokenizer_copy
    )
    resumed.train(resume_from_checkpoint=str(checkpoint))
    for name, value in straight.model.named_parameters():
        assert torch.equal(value, dict(resumed.model.named_parameters())[name]), name


def test_exact_match_on_prompt_completion_and_chat_eval_sets(tmp_path, tokenizer, qa_rows):
    for kind in (prompt_completion, conversational, messages):
        rows = kind(qa_rows.select(range(4)))
        trainer = train(tmp_path, tokenizer, rows, eval_exact_match=True, max_steps=1)
        metrics = trainer.evaluate(rows)
        assert 0.0 <= metrics["eval_exact_match"] <= 1.0 and len(metrics["eval_position_accuracy"]) == 3
        assert "eval_mean_token_accuracy" in metrics  # TRL's own evaluation stays


def test_several_eval_sets_are_each_scored_with_their_prompts(tmp_path, tokenizer, qa_rows):
    rows = prompt_completion(qa_rows.select(range(4)))
    trainer = train(tmp_path, tokenizer, rows, eval_exact_match=True)
    single = trainer.evaluate(rows)
    both = trainer.evaluate({"a": rows, "b": conversational(qa_rows.select(range(4)))})
    assert both["eval_a_position_accuracy"] == single["eval_position_accuracy"] and "eval_b_exact_match" in both
    assert both["eval_a_loss"] == pytest.approx(single["eval_loss"])  # the same prompts: pauses inserted once


def test_exact_match_is_off_with_one_warning_where_it_cannot_apply(tmp_path, tokenizer, qa_rows, caplog):
    text = Dataset.from_list([{"text": r["question"] + " = " + r["answer"]} for r in qa_rows.select(range(4))])
    trainer = train(tmp_path, tokenizer, text, num_pause_tokens=0, eval_exact_match=True)
    with caplog.at_level("WARNING"):
        first, second = trainer.evaluate(text), trainer.evaluate(text)
    assert "eval_exact_match" not in first and "eval_loss" in second
    assert sum("Exact-match evaluation is off" in r.message for r in caplog.records) == 1


def test_configs_keep_every_default_of_the_class_they_join():
    ours, trl = SeqVCRSFTConfig(output_dir="x", use_cpu=True), SFTConfig(output_dir="x", use_cpu=True)
    for spec in dataclasses.fields(SFTConfig):
        assert getattr(ours, spec.name) == getattr(trl, spec.name), spec.name
    assert ours.learning_rate == 2e-5 and ours.gradient_checkpointing and ours.logging_steps == 10

    @dataclasses.dataclass
    class MyConfig(SeqVCRArguments, SFTConfig):  # a user's own composition, documented in the README
        my_flag: int = dataclasses.field(default=3, metadata={"help": "mine"})

    mine = MyConfig(output_dir="x", use_cpu=True, num_pause_tokens=2)
    assert mine.num_pause_tokens == 2 and mine.my_flag == 3 and mine.learning_rate == 2e-5


def test_wrong_config_and_unsupported_batches_are_rejected_before_work(tmp_path, tokenizer, qa_rows):
    rows = prompt_completion(qa_rows)
    with pytest.raises(TypeError, match=r"SeqVCRSFTConfig.*SeqVCRArguments"):
        SeqVCRSFTTrainer(
            model=tiny_llama(tokenizer),
            args=SFTConfig(output_dir=str(tmp_path), use_cpu=True),
            train_dataset=rows,
            processing_class=tokenizer,
        )
    with pytest.raises(TypeError, match="SeqVCRSFTConfig"):
        SeqVCRSFTTrainer(
            model=tiny_llama(tokenizer), args=sgd_config(tmp_path), train_dataset=rows, processing_class=tokenizer
        )
    with pytest.raises(ValueError, match="packing=False"):
        SeqVCRSFTTrainer(
            model=tiny_llama(tokenizer),
            args=sft_config(tmp_path, packing=True, max_length=64),
            train_dataset=rows,
            processing_class=tokenizer,
        )
    text = Dataset.from_list([{"text": "1 2"}] * 4)
    with pytest.raises(ValueError, match=r"num_pause_tokens.*text"):
        SeqVCRSFTTrainer(
            model=tiny_llama(tokenizer),
            args=sft_config(tmp_path, num_pause_tokens=2),
            train_dataset=text,
            processing_class=tokenizer,
        )


def test_a_missing_trl_names_the_extra(monkeypatch):
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "trl" else find_spec(name, *a))
    with pytest.raises(ImportError, match=r'pip install "hf-seqvcr\[trl\]"'):
        hf_seqvcr.__getattr__("SeqVCRSFTTrainer")


class OwnForward(Trainer):
    """A trainer whose `compute_loss` runs its own forward and returns the loss alone, even when asked for outputs."""

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        logits = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]).logits
        return F.cross_entropy(logits[:, :-1].flatten(0, 1), inputs["labels"][:, 1:].flatten(), ignore_index=-100)


class NoGradForward(Trainer):
    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        with torch.no_grad():
            model(**inputs)
        return sum(p.sum() for p in model.parameters()) * 0.0


def test_a_trainer_with_its_own_forward_gets_the_regularizer(tmp_path, qa_rows):
    tokenizer, rows = build_digit_tokenizer(), qa_rows.select(range(4))

    class Own(SeqVCRMixin, OwnForward):
        pass

    ours = train(tmp_path, tokenizer, rows, trainer_class=Own, config=sgd_config)
    reference = train(tmp_path, tokenizer, rows, trainer_class=SeqVCRTrainer, config=sgd_config)
    off = train(tmp_path, tokenizer, rows, trainer_class=Own, config=sgd_config, use_seqvcr=False)
    torch.testing.assert_close(backbone(ours), backbone(reference), rtol=1e-5, atol=1e-6)
    assert not torch.allclose(backbone(ours), backbone(off))


def test_a_forward_without_gradients_stops_training(tmp_path, qa_rows):
    class NoGrad(SeqVCRMixin, NoGradForward):
        pass

    with pytest.raises(RuntimeError, match=r"no forward with gradients.*1 ran under `torch.no_grad\(\)`"):
        train(tmp_path, build_digit_tokenizer(), qa_rows.select(range(4)), trainer_class=NoGrad, config=sgd_config)


@pytest.mark.parametrize(
    "trainer_class, config", [(SeqVCRSFTTrainer, sft_config), (SeqVCRTrainer, sgd_config)], ids=["sft", "trainer"]
)
def test_no_host_sync_in_steps_that_do_not_log(tmp_path, tokenizer, qa_rows, monkeypatch, trainer_class, config):
    """Reading a device value (`.item()`, `.tolist()`) waits for the GPU: ours happen only when a step logs."""
    library = str(Path(hf_seqvcr.__file__).parent)
    reads, in_log = [], [False]
    for method in ("item", "tolist"):
        original = getattr(torch.Tensor, method)

        def counted(self, *args, _original=original, **kwargs):
            if not in_log[0] and sys._getframe(1).f_code.co_filename.startswith(library):
                reads.append(sys._getframe(1).f_code.co_name)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, method, counted)
    log = trainer_class.log

    def logging(self, *args, **kwargs):
        in_log[0] = True
        try:
            return log(self, *args, **kwargs)
        finally:
            in_log[0] = False

    monkeypatch.setattr(trainer_class, "log", logging)
    rows = qa_rows if trainer_class is SeqVCRTrainer else prompt_completion(qa_rows)
    trainer = train(tmp_path, tokenizer, rows, max_steps=2, logging_steps=2, trainer_class=trainer_class, config=config)
    assert reads == []
    assert trainer.state.log_history[0]["seqvcr"] > 0  # the values were read where the step logs
