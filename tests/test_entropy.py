import math

import numpy as np
import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM, Trainer, TrainingArguments

from hf_seqvcr.callbacks import EntropyCallback
from hf_seqvcr.entropy import layerwise_entropy, matrix_entropy


def slow_entropy(z: np.ndarray, alpha: float) -> float:
    """The definition, literally: N×N Gram, normalise by its trace, entropy of its spectrum.

    Eigenvalues below numpy's matrix-rank tolerance are exact zeros perturbed by round-off.
    """
    k = np.array([[float(np.dot(a, b)) for b in z] for a in z])
    lam = np.linalg.eigvalsh(k / np.trace(k))
    lam = [x for x in lam if x > lam.max() * max(z.shape) * np.finfo(np.float64).eps]
    if alpha == 1.0:
        return float(-sum(x * math.log(x) for x in lam))
    return math.log(sum(x**alpha for x in lam)) / (1.0 - alpha)


@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0, 3.0])
@pytest.mark.parametrize("shape", [(6, 20), (30, 5), (12, 12)])
def test_matches_literal_definition(alpha, shape):
    z = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
    assert matrix_entropy(z, alpha) == pytest.approx(slow_entropy(z.double().numpy(), alpha), abs=1e-9)


def test_alpha_one_is_the_limit():
    z = torch.randn(10, 7, generator=torch.Generator().manual_seed(1))
    assert matrix_entropy(z, 1.0 + 1e-6) == pytest.approx(matrix_entropy(z, 1.0), abs=1e-4)


@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0])
def test_identical_rows_give_zero(alpha):
    z = torch.randn(1, 16).repeat(9, 1)
    assert matrix_entropy(z, alpha) == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0])
def test_orthonormal_rows_give_log_n(alpha):
    q, _ = torch.linalg.qr(torch.randn(32, 8, generator=torch.Generator().manual_seed(2)))
    assert matrix_entropy(q.T, alpha) == pytest.approx(math.log(8), abs=1e-9)


def test_scale_invariant_and_bf16_input_accepted():
    z = torch.randn(16, 24, generator=torch.Generator().manual_seed(3)).double()
    assert matrix_entropy(1e3 * z) == pytest.approx(matrix_entropy(z), abs=1e-9)
    assert matrix_entropy(z.bfloat16()) == pytest.approx(matrix_entropy(z), abs=1e-2)


@pytest.mark.parametrize(
    ("reps", "alpha", "match"),
    [
        (torch.randn(4, 3), 0.0, "alpha"),
        (torch.randn(4, 3), -1.0, "alpha"),
        (torch.randn(4, 3), float("inf"), "alpha"),
        (torch.randn(4), 1.0, "reps"),
        (torch.randn(0, 3), 1.0, "reps"),
        (torch.zeros(4, 3), 1.0, "zero trace"),
        (torch.tensor([[1.0, float("nan")]]), 1.0, "NaN"),
    ],
)
def test_errors_name_the_argument(reps, alpha, match):
    with pytest.raises(ValueError, match=match):
        matrix_entropy(reps, alpha)


@pytest.fixture(scope="module")
def gpt2():
    torch.manual_seed(0)
    return GPT2LMHeadModel(GPT2Config(vocab_size=20, n_positions=16, n_embd=16, n_layer=3, n_head=2))


def make_batch(seed: int, rows: int = 4, length: int = 10) -> dict[str, torch.Tensor]:
    """Right-padded rows whose last 4 real tokens are the answer."""
    g = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(0, 20, (rows, length), generator=g)
    attention_mask = torch.ones_like(input_ids)
    attention_mask[0, -2:] = 0
    labels = input_ids.clone()
    labels[:, :4] = -100
    labels[attention_mask == 0] = -100
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


def test_one_entropy_per_hidden_state_and_mode_restored(gpt2):
    gpt2.train()
    values = layerwise_entropy(gpt2, [make_batch(0)])
    assert len(values) == gpt2.config.n_layer + 1
    assert all(0.0 < v <= math.log(gpt2.config.n_embd) + 1e-9 for v in values)
    assert gpt2.training


def test_positions_select_answer_or_all_tokens(gpt2):
    batch = make_batch(0)
    embed = gpt2.transformer.wte(batch["input_ids"]) + gpt2.transformer.wpe(torch.arange(10))
    answer = embed[batch["labels"] != -100]
    real = embed[batch["attention_mask"] == 1]
    assert layerwise_entropy(gpt2, [batch])[0] == pytest.approx(matrix_entropy(answer), abs=1e-6)
    assert layerwise_entropy(gpt2, [batch], positions="all")[0] == pytest.approx(matrix_entropy(real), abs=1e-6)


def test_pools_tokens_over_batches(gpt2):
    whole = make_batch(0)
    halves = [{k: v[:2] for k, v in whole.items()}, {k: v[2:] for k, v in whole.items()}]
    assert layerwise_entropy(gpt2, halves) == pytest.approx(layerwise_entropy(gpt2, [whole]), abs=1e-6)


def test_max_tokens_subsamples_deterministically(gpt2):
    batches = [make_batch(0), make_batch(1)]
    first = layerwise_entropy(gpt2, batches, max_tokens=5)
    assert first == layerwise_entropy(gpt2, batches, max_tokens=5)
    assert first != pytest.approx(layerwise_entropy(gpt2, batches), abs=1e-6)
    assert all(v <= math.log(5) + 1e-9 for v in first)


def test_llama_has_one_entry_per_layer_plus_embeddings():
    cfg = LlamaConfig(
        vocab_size=20,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=16,
    )
    assert len(layerwise_entropy(LlamaForCausalLM(cfg), [make_batch(2)], alpha=2.0)) == 3


def test_argument_errors(gpt2):
    with pytest.raises(ValueError, match="positions"):
        layerwise_entropy(gpt2, [make_batch(0)], positions="question")
    with pytest.raises(ValueError, match="max_tokens"):
        layerwise_entropy(gpt2, [make_batch(0)], max_tokens=0)
    no_labels = {k: v for k, v in make_batch(0).items() if k != "labels"}
    with pytest.raises(ValueError, match="labels"):
        layerwise_entropy(gpt2, [no_labels])
    empty = make_batch(0)
    empty["labels"][:] = -100
    with pytest.raises(ValueError, match="no tokens"):
        layerwise_entropy(gpt2, [empty])


def trainer_with_entropy_callback(tmp_path, model, eval_dataset) -> Trainer:
    args = TrainingArguments(output_dir=str(tmp_path), per_device_eval_batch_size=2, report_to="none", use_cpu=True)
    trainer = Trainer(model=model, args=args, eval_dataset=eval_dataset)
    trainer.add_callback(EntropyCallback(trainer, max_batches=2))
    return trainer


def rows(seed: int) -> list[dict[str, torch.Tensor]]:
    batch = make_batch(seed)
    return [{k: v[i] for k, v in batch.items()} for i in range(len(batch["input_ids"]))]


def test_callback_logs_one_entropy_per_layer_after_evaluate(tmp_path, gpt2):
    trainer = trainer_with_entropy_callback(tmp_path, gpt2, rows(0) + rows(1))
    trainer.evaluate()
    logged = [entry for entry in trainer.state.log_history if "entropy/mean" in entry]
    assert len(logged) == 1
    layers = sorted(k for k in logged[0] if k.startswith("entropy/layer_"))
    assert layers == [f"entropy/layer_{i:02d}" for i in range(gpt2.config.n_layer + 1)]
    first_two_batches = [make_batch(0)]  # max_batches=2 of size 2 = the four rows of make_batch(0)
    assert [logged[0][k] for k in layers] == pytest.approx(layerwise_entropy(gpt2, first_two_batches), abs=1e-6)


def test_callback_logs_each_named_eval_set(tmp_path, gpt2):
    trainer = trainer_with_entropy_callback(tmp_path, gpt2, {"four": rows(0), "five": rows(1)})
    trainer.evaluate()
    means = {k: v for entry in trainer.state.log_history for k, v in entry.items() if k.endswith("/mean")}
    assert set(means) == {"entropy/four/mean", "entropy/five/mean"}
    assert means["entropy/four/mean"] != pytest.approx(means["entropy/five/mean"])


def test_callback_rejects_bad_max_batches(tmp_path, gpt2):
    with pytest.raises(ValueError, match="max_batches"):
        args = TrainingArguments(output_dir=str(tmp_path), report_to="none")
        EntropyCallback(Trainer(model=gpt2, args=args), max_batches=0)
