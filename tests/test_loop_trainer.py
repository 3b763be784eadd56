"""The loop regularizer inside SeqVCRTrainer: logged exactly, composable with Seq-VCR, off means plain training."""

import pytest
import torch

from hf_seqvcr import SeqVCRTrainer, build_digit_tokenizer, loop_regularizer
from hf_seqvcr.looped import decoder_layers
from tiny import addition_splits, tiny_llama
from tiny import sgd_config as config


@pytest.fixture
def tokenizer():
    return build_digit_tokenizer()


@pytest.fixture
def rows():
    return addition_splits(digits=2, train=8, test=0)[0]


def train(tmp_path, tokenizer, rows, **overrides):
    model = tiny_llama(tokenizer, layers=4)
    trainer = SeqVCRTrainer(
        model=model, args=config(tmp_path, **overrides), train_dataset=rows, processing_class=tokenizer
    )
    trainer.train()
    return model, trainer.state.log_history


def test_logged_loopreg_is_the_regularizer_and_the_parts_add_up_to_the_loss(tmp_path, tokenizer, rows):
    expected = loop_regularizer(tiny_llama(tokenizer, layers=4), block=2, lambda_reg=10.0)
    _, logs = train(tmp_path, tokenizer, rows, loopreg_lambda=10.0, loopreg_block=2)
    first = logs[0]
    assert first["loopreg"] == pytest.approx(expected.loss.item(), rel=1e-6)
    assert first["loopreg_cos/self_attn.q_proj.weight"] == pytest.approx(
        expected.cosine["self_attn.q_proj.weight"].item(), rel=1e-5, abs=1e-7
    )
    assert first["loss"] == pytest.approx(first["ce"] + first["seqvcr"] + first["loopreg"], rel=1e-4)


def test_zero_lambda_is_bit_identical_to_plain_training_and_a_positive_one_pulls_blocks_together(
    tmp_path, tokenizer, rows
):
    steps = dict(max_steps=3, use_seqvcr=False)
    plain, _ = train(tmp_path, tokenizer, rows, **steps)
    zero, zero_logs = train(tmp_path, tokenizer, rows, loopreg_lambda=0.0, **steps)
    pulled, logs = train(tmp_path, tokenizer, rows, loopreg_lambda=10.0, loopreg_block=2, **steps)
    assert all(torch.equal(a, b) for a, b in zip(plain.state_dict().values(), zero.state_dict().values(), strict=True))
    assert "loopreg" not in zero_logs[0] and "seqvcr" not in logs[0]
    assert logs[0]["loss"] == pytest.approx(logs[0]["ce"] + logs[0]["loopreg"], rel=1e-4)

    def cosine(model):
        layers = decoder_layers(model)
        return torch.nn.functional.cosine_similarity(
            layers[0].mlp.up_proj.weight.flatten(), layers[2].mlp.up_proj.weight.flatten(), dim=0
        ).item()

    assert cosine(pulled) > cosine(plain) + 0.01


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(loopreg_block=4), "block"),
        (dict(loopreg_block=3), "block"),
        (dict(loopreg_block=2, loopreg_groups=["mlp.nope.weight"]), "mlp.nope.weight"),
    ],
)
def test_a_model_the_regularizer_cannot_take_fails_when_the_trainer_is_built(
    tmp_path, tokenizer, rows, overrides, message
):
    with pytest.raises(ValueError, match=message):
        SeqVCRTrainer(
            model=tiny_llama(tokenizer, layers=4),
            args=config(tmp_path, loopreg_lambda=1.0, **overrides),
            train_dataset=rows,
            processing_class=tokenizer,
        )


def test_loopreg_is_averaged_over_accumulated_micro_batches(tmp_path, tokenizer, rows):
    """Two identical micro-batches accumulated update exactly like one of them alone, and the logs add up."""
    from datasets import Dataset

    pair = rows.select(range(2))
    settings = dict(use_seqvcr=False, loopreg_lambda=10.0, loopreg_block=2, per_device_train_batch_size=2)
    once, _ = train(tmp_path, tokenizer, pair, **settings)
    twice, logs = train(
        tmp_path, tokenizer, Dataset.from_list(list(pair) * 2), gradient_accumulation_steps=2, **settings
    )
    for (name, a), b in zip(once.state_dict().items(), twice.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)
    assert logs[0]["loss"] == pytest.approx(logs[0]["ce"] + logs[0]["loopreg"], rel=1e-4)


def test_loopreg_refuses_sharded_training(tmp_path):
    with pytest.raises(ValueError, match=r"loopreg_lambda.*FSDP"):
        config(tmp_path, loopreg_lambda=1.0, fsdp="full_shard", use_cpu=False)
