"""Exact-match evaluation: batched, left-padded generation equals one-by-one generation; scoring is exact."""

import pytest
import torch
from tiny import addition_splits, tiny_gpt2, tiny_llama

from hf_seqvcr import PauseDataCollator, add_pause_tokens, build_digit_tokenizer, evaluate_exact_match
from hf_seqvcr.evaluation import extract_answer, generate_answers, score_answers


@pytest.mark.parametrize("build", [tiny_gpt2, tiny_llama])
def test_batched_generation_equals_unbatched(build):
    tokenizer = build_digit_tokenizer()
    tokenizer, model = add_pause_tokens(tokenizer, build(tokenizer, seed=3), num=2)
    collator = PauseDataCollator(tokenizer, num_pause_tokens=2)
    questions = ["1 + 2", "3 4 5 + 6 7 8 9", "9 * 9 9", "1 2 3 4 5 6 - 7"]  # different lengths: real left padding
    batched = generate_answers(model, collator, questions, batch_size=4, max_new_tokens=6)
    single = [generate_answers(model, collator, [q], batch_size=1, max_new_tokens=6)[0] for q in questions]
    assert batched == single


def test_scores_exact_match_and_positions():
    scores = score_answers(["123", "120", "1"], ["123", "123", "123"])
    assert scores["exact_match"] == pytest.approx(1 / 3)
    assert scores["position_accuracy"] == pytest.approx([1.0, 2 / 3, 1 / 3])
    assert scores["digit_accuracy"] == pytest.approx(6 / 9)


def test_answer_extraction_normalises_whitespace_and_reads_after_the_cot_marker():
    assert extract_answer(" 6 3 0 1 ", use_cot=False) == "6301"
    assert extract_answer("1 2 + 3 #### 4 5", use_cot=True) == "45"
    assert extract_answer("no marker", use_cot=True) == ""


def test_evaluate_exact_match_counts_a_model_that_copies_the_answer():
    """A stub model that always emits the reference digits scores 100 %: the whole path is wired."""
    tokenizer = build_digit_tokenizer()
    _, test = addition_splits(digits=1, train=0, test=5)
    collator = PauseDataCollator(tokenizer)
    answers = {row["question"]: row["answer"] for row in test}
    model = tiny_gpt2(tokenizer)

    def fake_generate(input_ids, attention_mask, max_new_tokens, **kwargs):
        rows = []
        for ids, mask in zip(input_ids, attention_mask):
            question = tokenizer.decode(ids[mask.bool()][:-1])  # drop the eos separator
            target = tokenizer(answers[question], add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
            target += [tokenizer.pad_token_id] * (max_new_tokens - len(target))
            rows.append(torch.cat([ids, torch.tensor(target)]))
        return torch.stack(rows)

    model.generate = fake_generate
    scores = evaluate_exact_match(model, collator, test)
    assert scores["exact_match"] == 1.0 and scores["digit_accuracy"] == 1.0
