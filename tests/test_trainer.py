"""SeqVCRTrainer: gradient-accumulation scaling, logged parts, the projection head's life cycle, resuming, bad input."""

import pytest
import torch
from datasets import Dataset
from safetensors.torch import load_file
from transformers import Trainer, TrainerCallback

from hf_seqvcr import (
    PauseDataCollator,
    SeqVCRMixin,
    SeqVCRTrainer,
    add_pause_tokens,
    build_digit_tokenizer,
    get_projector,
    seq_vcr_loss,
)
from hf_seqvcr import trainer as trainer_module
from hf_seqvcr.projection import PROJECTIONS_KEY, PROJECTOR_WEIGHTS_NAME
from tiny import addition_splits, tiny_gpt2
from tiny import sgd_config as config


@pytest.fixture
def tokenizer():
    return build_digit_tokenizer()


@pytest.fixture
def rows():
    train, _ = addition_splits(digits=2, train=8, test=0)
    return train


def params_after_one_step(tmp_path, tokenizer, rows, **overrides) -> dict[str, torch.Tensor]:
    model = tiny_gpt2(tokenizer)
    trainer = SeqVCRTrainer(
        model=model, args=config(tmp_path, **overrides), train_dataset=rows, processing_class=tokenizer
    )
    trainer.train()
    return {k: v.detach().clone() for k, v in model.named_parameters()}


def assert_same_params(a, b):
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-5, atol=1e-6, msg=name)


def test_regularizer_off_accumulation_matches_a_full_batch(tmp_path, tokenizer, rows):
    rows = rows.select(range(4))
    full = params_after_one_step(tmp_path, tokenizer, rows, use_seqvcr=False, per_device_train_batch_size=4)
    accumulated = params_after_one_step(
        tmp_path, tokenizer, rows, use_seqvcr=False, per_device_train_batch_size=2, gradient_accumulation_steps=2
    )
    assert_same_params(full, accumulated)
    assert not torch.equal(full["transformer.wte.weight"], tiny_gpt2(tokenizer).transformer.wte.weight)


def test_regularizer_is_averaged_over_accumulated_micro_batches(tmp_path, tokenizer, rows):
    """Two identical micro-batches accumulated must update exactly like one of them alone."""
    pair = rows.select(range(2))
    twice = Dataset.from_list(list(pair) * 2)
    once = params_after_one_step(tmp_path, tokenizer, pair, per_device_train_batch_size=2)
    accumulated = params_after_one_step(
        tmp_path, tokenizer, twice, per_device_train_batch_size=2, gradient_accumulation_steps=2
    )
    assert_same_params(once, accumulated)
    off = params_after_one_step(tmp_path, tokenizer, pair, per_device_train_batch_size=2, use_seqvcr=False)
    assert not torch.allclose(once["transformer.h.1.mlp.c_fc.weight"], off["transformer.h.1.mlp.c_fc.weight"])


def test_logged_parts_equal_seq_vcr_loss_on_the_same_batch(tmp_path, tokenizer, rows):
    model = tiny_gpt2(tokenizer)
    args = config(tmp_path, seqvcr_lambda_var=0.7, seqvcr_lambda_cov=0.3, seqvcr_layers=[1, -1])
    trainer = SeqVCRTrainer(model=model, args=args, train_dataset=rows.select(range(4)), processing_class=tokenizer)
    batch = trainer.data_collator(list(rows.select(range(4))))
    model.train()
    with torch.no_grad():
        outputs = model(**batch, output_hidden_states=True)
        projections = get_projector(model)(outputs.hidden_states)
    expected = [seq_vcr_loss(z, batch["attention_mask"], lambda_var=0.7, lambda_cov=0.3) for z in projections]
    trainer.train()
    logged = trainer.state.log_history[0]
    mean = lambda name: torch.stack([getattr(e, name) for e in expected]).mean().item()  # noqa: E731
    assert logged["seqvcr_var"] == pytest.approx(mean("variance"), rel=1e-5)
    assert logged["seqvcr_cov"] == pytest.approx(mean("covariance"), rel=1e-5)
    assert logged["seqvcr"] == pytest.approx(mean("loss"), rel=1e-5)
    assert logged["ce"] == pytest.approx(outputs.loss.item(), rel=1e-5)
    assert logged["loss"] == pytest.approx(logged["ce"] + logged["seqvcr"], rel=1e-4)


def test_projection_head_in_checkpoints_not_in_final_weights_and_resume_restores_it(tmp_path, tokenizer, rows):
    args = dict(max_steps=2, save_strategy="steps", save_steps=1, per_device_train_batch_size=2)
    model = tiny_gpt2(tokenizer)
    trainer = SeqVCRTrainer(model=model, args=config(tmp_path, **args), train_dataset=rows, processing_class=tokenizer)
    trainer.train()
    trained_head = {k: v.clone() for k, v in get_projector(model).state_dict().items()}
    checkpoint = tmp_path / "out" / "checkpoint-1"
    assert not any(k.startswith("seqvcr_projector.") for k in load_file(checkpoint / "model.safetensors"))
    assert load_file(checkpoint / PROJECTOR_WEIGHTS_NAME).keys() == trained_head.keys()  # the head's own file
    trainer.save_model(str(tmp_path / "final"))
    assert not any(k.startswith("seqvcr_projector.") for k in load_file(tmp_path / "final" / "model.safetensors"))

    resumed_model = tiny_gpt2(tokenizer, seed=1)
    resumed = SeqVCRTrainer(
        model=resumed_model, args=config(tmp_path, **args), train_dataset=rows, processing_class=tokenizer
    )
    resumed.train(resume_from_checkpoint=str(checkpoint))
    for key, value in get_projector(resumed_model).state_dict().items():
        torch.testing.assert_close(value, trained_head[key], rtol=1e-6, atol=1e-7, msg=key)

    kept = SeqVCRTrainer(
        model=tiny_gpt2(tokenizer),
        args=config(tmp_path, keep_projection_head=True),
        train_dataset=rows,
        processing_class=tokenizer,
    )
    kept.save_model(str(tmp_path / "kept"))
    assert any(k.startswith("seqvcr_projector.") for k in load_file(tmp_path / "kept" / "model.safetensors"))


class HeadAfterEachStep(TrainerCallback):
    """The projection head's weights after every step this run takes, by step."""

    def __init__(self, model):
        self.model, self.heads = model, {}

    def on_step_end(self, args, state, control, **kwargs):
        self.heads[state.global_step] = {k: v.clone() for k, v in get_projector(self.model).state_dict().items()}


def test_resume_true_takes_the_last_checkpoint_and_logged_parts_still_add_up(tmp_path, tokenizer, rows):
    """`--resume_from_checkpoint true` arrives as the string "true"; after resuming, `ce + seqvcr` is still `loss`."""
    args = dict(save_strategy="steps", save_steps=1, per_device_train_batch_size=2)
    SeqVCRTrainer(
        model=tiny_gpt2(tokenizer),
        args=config(tmp_path, max_steps=2, **args),
        train_dataset=rows,
        processing_class=tokenizer,
    ).train()
    model = tiny_gpt2(tokenizer, seed=1)
    resumed = SeqVCRTrainer(
        model=model, args=config(tmp_path, max_steps=4, **args), train_dataset=rows, processing_class=tokenizer
    )
    steps = HeadAfterEachStep(model)
    resumed.add_callback(steps)
    resumed.train(resume_from_checkpoint="true")
    assert list(steps.heads) == [3, 4]  # from checkpoint-2, the last one
    logs = [log for log in resumed.state.log_history if "loss" in log]
    assert [log["step"] for log in logs] == [1, 2, 3, 4]  # the first two come with the checkpoint's state
    for log in logs:
        assert log["ce"] + log["seqvcr"] == pytest.approx(log["loss"], rel=1e-4)


@pytest.mark.parametrize("flag", [True, "true"])
def test_resume_true_without_a_checkpoint_names_the_flag_and_the_directory(tmp_path, tokenizer, rows, flag):
    trainer = SeqVCRTrainer(
        model=tiny_gpt2(tokenizer), args=config(tmp_path), train_dataset=rows, processing_class=tokenizer
    )
    with pytest.raises(ValueError, match=rf"--resume_from_checkpoint true.*{tmp_path / 'out'} holds no checkpoint-"):
        trainer.train(resume_from_checkpoint=flag)


def test_a_last_micro_batch_of_one_row_skips_the_regularizer_and_is_counted(tmp_path, tokenizer, rows):
    """5 rows at batch 2: the epoch ends on one row, too few for a covariance across the batch."""
    model = tiny_gpt2(tokenizer)
    trainer = SeqVCRTrainer(
        model=model,
        args=config(tmp_path, max_steps=-1, num_train_epochs=1, per_device_train_batch_size=2),
        train_dataset=rows.select(range(5)),
        processing_class=tokenizer,
    )
    heads = HeadAfterEachStep(model)
    trainer.add_callback(heads)
    with pytest.warns(UserWarning, match="single row.*seqvcr_skipped.*dataloader_drop_last"):
        trainer.train()
    *full, last = [log for log in trainer.state.log_history if "loss" in log]
    assert [log["step"] for log in full] == [1, 2] and not any("seqvcr_skipped" in log for log in full)
    assert all(log["seqvcr"] > 0 and "seqvcr_var" in log for log in full)
    assert last["seqvcr_skipped"] == 1 and last["seqvcr"] == 0.0 and "seqvcr_var" not in last
    assert last["ce"] == pytest.approx(last["loss"], rel=1e-6)
    for key, value in heads.heads[3].items():  # plain SGD: the skipped step leaves the head where it was ...
        torch.testing.assert_close(value, heads.heads[2][key], rtol=0, atol=0)
    assert not torch.equal(heads.heads[2]["heads.0.weight"], heads.heads[1]["heads.0.weight"])  # ... others move it


def test_the_projector_projects_exactly_the_requested_layers(tmp_path, tokenizer, rows):
    model = tiny_gpt2(tokenizer)
    SeqVCRTrainer(
        model=model, args=config(tmp_path, seqvcr_layers=[1, -1]), train_dataset=rows, processing_class=tokenizer
    )
    projector = get_projector(model)
    batch = PauseDataCollator(tokenizer)(list(rows.select(range(2))))
    with torch.no_grad():
        hidden = model(**batch, output_hidden_states=True).hidden_states
        torch.testing.assert_close(projector(hidden, [2]), [projector.heads[1](hidden[2])])
        torch.testing.assert_close(
            projector(hidden, [-1, 1]), [projector.heads[1](hidden[2]), projector.heads[0](hidden[1])]
        )
        with pytest.raises(
            ValueError, match=r"Hidden state 0 has no Seq-VCR head \(heads for \[1, 2\]\).*seqvcr_layers"
        ):
            projector(hidden, [0])


def test_a_plain_forward_is_untouched_outside_training_steps(tmp_path, tokenizer, rows):
    model = tiny_gpt2(tokenizer)
    batch = PauseDataCollator(tokenizer)(list(rows.select(range(2))))
    model.train()
    before = model(**batch, use_cache=False)
    SeqVCRTrainer(model=model, args=config(tmp_path), train_dataset=rows, processing_class=tokenizer)
    model.train()
    after = model(**batch, use_cache=False)
    assert after.keys() == before.keys() and PROJECTIONS_KEY not in after
    torch.testing.assert_close(after.logits, before.logits, rtol=0, atol=0)


def test_no_projection_head_when_regularizer_off(tmp_path, tokenizer, rows):
    model = tiny_gpt2(tokenizer)
    SeqVCRTrainer(model=model, args=config(tmp_path, use_seqvcr=False), train_dataset=rows, processing_class=tokenizer)
    assert get_projector(model) is None


def test_mixin_composes_with_another_trainer_subclass(tmp_path, tokenizer, rows):
    class CountingTrainer(Trainer):
        steps = 0

        def training_step(self, *args, **kwargs):
            CountingTrainer.steps += 1
            return super().training_step(*args, **kwargs)

    class Composed(SeqVCRMixin, CountingTrainer):
        pass

    trainer = Composed(
        model=tiny_gpt2(tokenizer), args=config(tmp_path), train_dataset=rows, processing_class=tokenizer
    )
    trainer.train()
    assert CountingTrainer.steps == 1 and "seqvcr_var" in trainer.state.log_history[0]


def test_end_lets_gloo_workers_settle_before_the_trainer_ends_the_process_group(tmp_path, tokenizer, monkeypatch):
    """In that order: once the group is destroyed, nothing tells whether it was gloo's (hf_seqvcr/distributed.py)."""
    calls = []
    monkeypatch.setattr(trainer_module, "settle_gloo_workers", lambda: calls.append("settle"))
    monkeypatch.setattr(Trainer, "end", lambda self: calls.append("Trainer.end"))
    SeqVCRTrainer(model=tiny_gpt2(tokenizer), args=config(tmp_path), processing_class=tokenizer).end()
    assert calls == ["settle", "Trainer.end"]


def test_exact_match_evaluation_inside_the_trainer(tmp_path, tokenizer, rows):
    tokenizer, model = add_pause_tokens(tokenizer, tiny_gpt2(tokenizer), num=2)
    args = config(tmp_path, num_pause_tokens=2, eval_exact_match=True, per_device_eval_batch_size=3)
    trainer = SeqVCRTrainer(model=model, args=args, train_dataset=rows, eval_dataset=rows, processing_class=tokenizer)
    metrics = trainer.evaluate()
    assert 0.0 <= metrics["eval_exact_match"] <= 1.0
    assert len(metrics["eval_position_accuracy"]) == 3  # answers have 3 digits
    logged = trainer.state.log_history[-1]
    assert "eval_exact_match" in logged  # the per-position list is kept for trainer_state.json, not sent to loggers
    assert logged["eval_position_accuracy"] == metrics["eval_position_accuracy"]


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(seqvcr_lambda_var=-1.0), "seqvcr_lambda_var"),
        (dict(seqvcr_lambda_cov=-0.1), "seqvcr_lambda_cov"),
        (dict(seqvcr_eps=-1e-4), "seqvcr_eps"),
        (dict(seqvcr_eps=0.0), "seqvcr_eps.*NaN"),
        (dict(seqvcr_lambda_var=float("nan")), "seqvcr_lambda_var.*finite"),
        (dict(seqvcr_lambda_cov=float("inf")), "seqvcr_lambda_cov.*finite"),
        (dict(seqvcr_positions="middle"), "seqvcr_positions.*one of"),
        (dict(seqvcr_proj_dim=0), "seqvcr_proj_dim"),
        (dict(per_device_train_batch_size=1), "per_device_train_batch_size"),
        (dict(num_pause_tokens=-1), "num_pause_tokens"),
        (dict(seqvcr_covariance="tokens"), "seqvcr_covariance"),
        (dict(seqvcr_layers=[]), "seqvcr_layers"),
    ],
)
def test_bad_config_values_are_rejected_with_the_field_name(tmp_path, overrides, message):
    with pytest.raises(ValueError, match=message):
        config(tmp_path, **overrides)


def test_batch_of_one_allowed_when_covariance_pools_positions(tmp_path):
    assert config(tmp_path, per_device_train_batch_size=1, seqvcr_covariance="batch_positions")


def test_layer_out_of_range_is_rejected_before_training(tmp_path, tokenizer, rows):
    with pytest.raises(ValueError, match=r"seqvcr_layers.*out of range.*3 hidden states"):
        SeqVCRTrainer(
            model=tiny_gpt2(tokenizer),
            args=config(tmp_path, seqvcr_layers=[5]),
            train_dataset=rows,
            processing_class=tokenizer,
        )


def test_tokenizer_without_pad_token_is_rejected(tmp_path, tokenizer, rows):
    tokenizer.pad_token = None
    with pytest.raises(ValueError, match=r"pad token.*tokenizer.pad_token = tokenizer.eos_token"):
        SeqVCRTrainer(model=tiny_gpt2(tokenizer), args=config(tmp_path), train_dataset=rows, processing_class=tokenizer)


def test_rows_without_expected_fields_are_rejected(tmp_path, tokenizer):
    bad = Dataset.from_list([{"prompt": "1 + 2", "completion": "3"}] * 4)
    with pytest.raises(ValueError, match=r"train_dataset.*question.*answer"):
        SeqVCRTrainer(model=tiny_gpt2(tokenizer), args=config(tmp_path), train_dataset=bad, processing_class=tokenizer)


def test_missing_pause_tokens_are_reported(tmp_path, tokenizer, rows):
    with pytest.raises(ValueError, match="add_pause_tokens"):
        PauseDataCollator(tokenizer, num_pause_tokens=2)


def test_the_trainer_adds_missing_pause_tokens(tmp_path, tokenizer, rows):
    """`num_pause_tokens` is the one switch: a tokenizer without pauses gets them, and the model grows to fit."""
    model = tiny_gpt2(tokenizer)
    trainer = SeqVCRTrainer(
        model=model, args=config(tmp_path, num_pause_tokens=2), train_dataset=rows, processing_class=tokenizer
    )
    pause = tokenizer.convert_tokens_to_ids("<pause>")
    assert model.get_input_embeddings().num_embeddings == len(tokenizer) > pause
    assert trainer.data_collator(list(rows.select(range(2))))["input_ids"].eq(pause).sum() == 4


def test_a_middle_layer_alone_is_regularized_below_it_and_nothing_above(tmp_path, tokenizer, rows):
    """`seqvcr_layers=[1]` without the last layer: the forward then returns None for the hidden states it was not
    asked for. The term must reach the block that makes hidden state 1 (h.0) and leave the block above it (h.1)
    updated as without the regularizer (no gradient clipping, which would couple the two through the norm)."""
    control = params_after_one_step(tmp_path, tokenizer, rows, use_seqvcr=False, max_grad_norm=0.0)
    middle = params_after_one_step(tmp_path, tokenizer, rows, seqvcr_layers=[1], max_grad_norm=0.0)
    assert not torch.allclose(middle["transformer.h.0.mlp.c_fc.weight"], control["transformer.h.0.mlp.c_fc.weight"])
    for name in ("transformer.h.1.mlp.c_fc.weight", "transformer.ln_f.weight"):
        torch.testing.assert_close(middle[name], control[name], rtol=1e-6, atol=1e-7, msg=name)
