"""Representational-collapse probe against a closed form, bf16 indistinguishability, prompt pairs, and exact match
per length bucket."""

from __future__ import annotations

import math
import random

import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from data_builders import copying
from data_builders.length_buckets import bucket_splits
from hf_seqvcr import PauseDataCollator, build_digit_tokenizer, collapse_distances, exact_match_by_length
from hf_seqvcr.oversquashing import (
    PromptPair,
    bf16_spacing,
    final_hidden_state,
    pair_distances,
    prompt_pairs,
)
from tiny import tiny_gpt2, tiny_llama

VOCAB, WIDTH = 6, 8


def uniform_attention_model(max_positions: int = 1100) -> tuple[LlamaForCausalLM, torch.Tensor]:
    """One LLaMA layer whose last-token output is ``e_last + mean(e_1..e_n)`` exactly, and its embeddings.

    Zero queries/keys make the causal softmax uniform (and RoPE, rotating zeros, vanishes); identity value/output
    maps pass the token embeddings; a zero MLP down-projection adds nothing to the residual. Embeddings are ±1, so
    the input RMSNorm (eps 0) divides by exactly 1; the final norm is replaced by the identity, since no weight can
    make a norm the identity.
    """
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=WIDTH,
        intermediate_size=4,
        num_hidden_layers=1,
        num_attention_heads=1,
        num_key_value_heads=1,
        max_position_embeddings=max_positions,
        rms_norm_eps=0.0,
        attn_implementation="eager",
    )
    model = LlamaForCausalLM(config)
    embeddings = torch.randint(0, 2, (VOCAB, WIDTH), generator=torch.Generator().manual_seed(1)).float() * 2 - 1
    layer = model.model.layers[0]
    with torch.no_grad():
        model.model.embed_tokens.weight.copy_(embeddings)
        layer.self_attn.q_proj.weight.zero_()
        layer.self_attn.k_proj.weight.zero_()
        layer.self_attn.v_proj.weight.copy_(torch.eye(WIDTH))
        layer.self_attn.o_proj.weight.copy_(torch.eye(WIDTH))
        layer.mlp.down_proj.weight.zero_()
    model.model.norm = torch.nn.Identity()
    return model, embeddings.double()


def closed_form(embeddings: torch.Tensor, sequence: list[int]) -> torch.Tensor:
    """Thm 4.2 with uniform attention: the last-token outputs differ by mean_{n+1} - mean_n = (a - mean_n)/(n+1)."""
    values = embeddings[sequence]
    return (values[-1] - values.mean(0)) / (len(sequence) + 1)


def fp32_sum_error(n: int) -> float:
    """Worst-case fp32 rounding of an average of n entries of size 1 (n·eps; ~2e-5 against 6e-3 at n = 200)."""
    return n * torch.finfo(torch.float32).eps


def test_probe_equals_the_closed_form_of_uniform_attention_in_fp32():
    model, embeddings = uniform_attention_model()
    rng = random.Random(0)
    lengths = [1, 2, 5, 17, 64, 200]
    sequences = [[rng.randrange(VOCAB) for _ in range(n)] for n in lengths]
    points = collapse_distances(model, sequences, dtypes=[torch.float32])
    assert [p.length for p in points] == lengths and {p.dtype for p in points} == {"float32"}
    for point, sequence in zip(points, sequences, strict=True):
        expected = closed_form(embeddings, sequence)
        tolerance = fp32_sum_error(len(sequence))
        assert point.linf == pytest.approx(float(expected.abs().max()), abs=tolerance)
        assert point.l2 == pytest.approx(float(expected.norm()), abs=tolerance)
    assert points[0].linf == 0  # one token repeated: [a] and [a, a] have the same mean


def test_distance_decays_like_one_over_n():
    """For ``b…b a`` the mean stays away from ``a``, so the distance is (n-1)|a-b| / (n(n+1)) ~ 1/n."""
    model, embeddings = uniform_attention_model()
    lengths = [100, 200, 400]
    points = collapse_distances(model, [[2] * (n - 1) + [1] for n in lengths], dtypes=[torch.float32])
    gap = float((embeddings[1] - embeddings[2]).abs().max())
    for point, n in zip(points, lengths, strict=True):
        assert point.linf == pytest.approx(gap * (n - 1) / (n * (n + 1)), abs=fp32_sum_error(n))
    slope = math.log(points[-1].linf / points[0].linf) / math.log(lengths[-1] / lengths[0])
    assert slope == pytest.approx(-1, abs=0.02)


def test_bf16_cannot_tell_the_pair_apart_once_fp32_is_below_the_bf16_resolution():
    """Prompt ``b 1…1`` (the paper's prefix + ones) against one more ``1``.

    In bf16 the attention output ``bf16(bf16(1/N) · S)``, S = N - 2 on the entries where b differs, rounds to
    1 - 2^-8 or 1 once 2/N + 2^-9 < 1.5 · 2^-8 (N > 512), and ``1 + that`` rounds to 2: both prompts give exactly
    ±2 everywhere, while the fp32 distance, 2/(N(N+1)), is still positive. Short prompts stay apart in bf16.
    """
    model, _ = uniform_attention_model()
    short, long = [2, 3, 5, 8], [600, 800, 1000]
    points = collapse_distances(model, [[2] + [1] * (n - 1) for n in short + long])
    fp32 = {p.length: p for p in points if p.dtype == "float32"}
    bf16 = {p.length: p for p in points if p.dtype == "bfloat16"}
    for n in long:
        assert 0 < fp32[n].linf < fp32[n].bf16_resolution and bf16[n].bf16_resolution == 2**-6  # at 2: 2^(1-7)
        assert bf16[n].linf == bf16[n].l2 == 0
    for n in short:
        assert fp32[n].linf > fp32[n].bf16_resolution and bf16[n].linf > 0


def test_probe_leaves_the_model_as_it_was():
    model, _ = uniform_attention_model()
    model.train()
    before = {name: value.clone() for name, value in model.state_dict().items()}
    collapse_distances(model, [[1, 2, 3]])
    assert model.training and next(model.parameters()).dtype == torch.float32
    assert all(torch.equal(before[name], value) for name, value in model.state_dict().items())


@pytest.mark.parametrize("build", [tiny_llama, tiny_gpt2])
def test_final_hidden_state_is_what_the_lm_head_reads(build):
    """Pins the transformers detail the probe relies on: hidden_states[-1] is taken after the final norm."""
    tokenizer = build_digit_tokenizer()
    model = build(tokenizer).eval()
    ids = tokenizer("count:1111", add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0, -1]
        torch.testing.assert_close(model.get_output_embeddings()(final_hidden_state(model, ids)), logits)


def test_bf16_spacing_is_the_gap_to_the_next_bf16_number():
    for value in [1.0, 1.5, 2.0, 3.0, 0.375, 2.0**-20, 2.0**100, 2.0**-130, 0.0, -6.0]:
        as_bf16 = torch.tensor([abs(value)], dtype=torch.bfloat16)
        following = (as_bf16.view(torch.int16) + 1).view(torch.bfloat16)  # next bit pattern = next bf16 number
        assert bf16_spacing(value) == float(following.double() - as_bf16.double()), value
    assert bf16_spacing(1.99) == 2**-7 and bf16_spacing(2.01) == 2**-6
    with pytest.raises(ValueError, match="finite"):
        bf16_spacing(float("nan"))


def test_prompt_pairs_build_the_papers_three_variants_one_token_per_digit():
    tokenizer = build_digit_tokenizer()

    def text(ids):
        return tokenizer.decode(ids)

    (ones,) = prompt_pairs(tokenizer, [4], prefix="count:", max_positions=64)
    assert (ones.length, text(ones.first), text(ones.second)) == (4, "count:1111", "count:11111")
    (commas,) = prompt_pairs(tokenizer, [6], variant="commas", max_positions=64)
    assert (text(commas.first), text(commas.second)) == ("111,111", "111,111,1")
    pairs = prompt_pairs(tokenizer, [1, 2, 30], variant="random", max_positions=64, seed=3)
    for pair in pairs:
        first = text(pair.first)
        assert len(first) == pair.length and first[-1] == "1" and first[-2:-1] != "1" and first.isdigit()
        assert pair.second == [*pair.first, pair.first[-1]]
    assert pairs == prompt_pairs(tokenizer, [1, 2, 30], variant="random", max_positions=64, seed=3)
    assert pairs[2] != prompt_pairs(tokenizer, [30], variant="random", max_positions=64, seed=4)[0]


def test_prompt_pairs_and_probe_errors_name_the_argument():
    tokenizer = build_digit_tokenizer()
    digits_only = PreTrainedTokenizerFast(
        tokenizer_object=_word_level({c: i for i, c in enumerate(["<unk>", *"0123456789"])}), unk_token="<unk>"
    )
    with pytest.raises(ValueError, match=r"symbol ',' is not a single known token"):
        prompt_pairs(digits_only, [3], variant="commas", max_positions=None)
    assert prompt_pairs(digits_only, [3], variant="random", max_positions=None)  # needs no comma
    with pytest.raises(ValueError, match=r"lengths=\[0\] must be integers >= 1"):
        prompt_pairs(tokenizer, [0], max_positions=None)
    with pytest.raises(ValueError, match=r"n=60 makes a 67-token prompt.*max_positions=64"):
        prompt_pairs(tokenizer, [10, 60], prefix="count:", max_positions=64)
    with pytest.raises(ValueError, match="variant="):
        prompt_pairs(tokenizer, [3], variant="dots", max_positions=None)
    model, _ = uniform_attention_model(max_positions=8)
    with pytest.raises(ValueError, match=r"9 tokens, beyond the model's max_position_embeddings=8"):
        collapse_distances(model, [[1] * 8])
    with pytest.raises(ValueError, match="non-empty"):
        collapse_distances(model, [[]])
    with pytest.raises(ValueError, match="floating-point"):
        pair_distances(model, [PromptPair(1, [1], [1, 1])], dtypes=[torch.int64])


def _word_level(vocab: dict[str, int]) -> Tokenizer:
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Split(" ", behavior="removed")
    return backend


# --- exact match per length bucket ---------------------------------------------------------------------


def always_zero_model(tokenizer):
    """Greedy generation always gives ``0`` then eos: the logits read only the current token's embedding."""
    model = tiny_llama(tokenizer, layers=1)
    zero, eos = tokenizer.convert_tokens_to_ids("0"), tokenizer.eos_token_id
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        model.model.embed_tokens.weight.zero_()
        model.model.embed_tokens.weight[eos, 0] = 1  # after the prompt's eos: say 0
        model.model.embed_tokens.weight[zero, 1] = 1  # after 0: stop
        model.lm_head.weight.zero_()
        model.lm_head.weight[zero, 0] = 1
        model.lm_head.weight[eos, 1] = 1
    return model


def test_exact_match_by_length_scores_each_bucket():
    tokenizer = build_digit_tokenizer()
    collator = PauseDataCollator(tokenizer)
    model = always_zero_model(tokenizer)
    buckets = {
        3: [{"question": "last:110", "answer": "0"}, {"question": "first:011", "answer": "0"}],
        5: [{"question": "last:11111", "answer": "1"}],
    }
    assert exact_match_by_length(model, collator, buckets) == {3: 1.0, 5: 0.0}
    # all-ones copying: each bucket holds 1…10 and 1…11, so answering 0 is right exactly half the time
    data = copying.build(
        content="ones",
        min_length=1,
        max_length=4,
        test_lengths=(8, 16),
        bucket_size=2,
        train_size=4,
        validation_size=1,
        test_size=1,
        seed=0,
    )
    assert exact_match_by_length(model, collator, bucket_splits(data)) == {8: 0.5, 16: 0.5}
    with pytest.raises(ValueError, match="buckets is empty"):
        exact_match_by_length(model, collator, {})


def test_exact_match_by_length_of_a_random_model_is_a_fraction_per_bucket():
    tokenizer = build_digit_tokenizer()
    data = copying.build(test_lengths=(4, 8, 12), bucket_size=6, train_size=10, validation_size=2, test_size=2, seed=0)
    scores = exact_match_by_length(tiny_gpt2(tokenizer, seed=1), PauseDataCollator(tokenizer), bucket_splits(data))
    assert list(scores) == [4, 8, 12] and all(0 <= value <= 1 for value in scores.values())
