"""Exact-match evaluation: batched, left-padded generation equals one-by-one generation; scoring is exact; the
`evaluate` metric, `compute_metrics` and the trainer all score through `score_answers`."""

import configparser
from pathlib import Path

import evaluate
import numpy as np
import pytest
import torch
from transformers import EvalPrediction

import hf_seqvcr.trainer
from hf_seqvcr import PauseDataCollator, SeqVCRTrainer, add_pause_tokens, build_digit_tokenizer, evaluate_exact_match
from hf_seqvcr.evaluation import (
    METRIC_PATH,
    exact_match_compute_metrics,
    extract_answer,
    generate_answers,
    load_metric,
    normalize_answer,
    predict_answers,
    score_answers,
)
from hf_seqvcr.model_card import TEMPLATE_PATH
from tiny import addition_splits, sgd_config, tiny_gpt2, tiny_llama

ROOT = Path(__file__).resolve().parents[1]


def answering_model(tokenizer, answers: dict[str, str]):
    """A tiny model whose `generate` writes `answers[question]` then eos: known predictions, no training."""
    model = tiny_gpt2(tokenizer)

    def fake_generate(input_ids, attention_mask, max_new_tokens, **kwargs):
        rows = []
        for ids, mask in zip(input_ids, attention_mask, strict=True):
            question = tokenizer.decode(ids[mask.bool()][:-1])  # drop the eos separator
            target = tokenizer(answers[question], add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
            target += [tokenizer.pad_token_id] * (max_new_tokens - len(target))
            rows.append(torch.cat([ids, torch.tensor(target[:max_new_tokens])]))
        return torch.stack(rows)

    model.generate = fake_generate
    return model


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
    model = answering_model(tokenizer, {row["question"]: row["answer"] for row in test})
    scores = evaluate_exact_match(model, collator, test)
    assert scores["exact_match"] == 1.0 and scores["digit_accuracy"] == 1.0


CASES = {
    "exact": (["123", "45"], ["123", "45"]),
    "partial": (["120", "55"], ["123", "45"]),
    "longer and shorter": (["12345", "4", ""], ["123", "45", "6"]),
    "references of several lengths": (["1", "21", "321"], ["1", "22", "333"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_metric_loads_offline_from_its_path_and_equals_score_answers(case, hub, monkeypatch):
    monkeypatch.setattr(evaluate.config, "HF_EVALUATE_OFFLINE", True)  # what HF_EVALUATE_OFFLINE=1 sets on import
    mark = len(hub.requests)
    metric = evaluate.load(str(METRIC_PATH))
    predictions, references = CASES[case]
    assert metric.compute(predictions=predictions, references=references) == score_answers(predictions, references)
    assert load_metric().compute(predictions=predictions, references=references) == score_answers(
        predictions, references
    )
    assert hub.requests_since(mark) == []  # nothing asked the Hub, not even the loopback one


def test_metric_values_on_a_hand_made_case():
    scores = load_metric().compute(predictions=["12345", "4", ""], references=["123", "45", "6"])
    assert scores == {
        "exact_match": 0.0,
        "digit_accuracy": pytest.approx(4 / 6),
        "position_accuracy": pytest.approx([2 / 3, 1 / 2, 1.0]),
    }


@pytest.mark.parametrize(
    ("predictions", "references", "error"),
    [(["1"], ["1", "2"], "number of predictions"), ([], [], "No examples to score")],
)
def test_metric_rejects_mismatched_or_empty_inputs(predictions, references, error):
    with pytest.raises(ValueError, match=error):
        load_metric().compute(predictions=predictions, references=references)


def test_metric_and_card_template_ship_with_the_package():
    """`package_data` in setup.cfg names both, so an installed wheel (not only this checkout) loads them."""
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    package = ROOT / "hf_seqvcr"
    shipped = {path for glob in config["options.package_data"]["hf_seqvcr"].split() for path in package.glob(glob)}
    assert {METRIC_PATH / "seqvcr_exact_match.py", TEMPLATE_PATH} <= shipped


def _ids(tokenizer, texts: list[str]) -> np.ndarray:
    """Token ids of `texts` each followed by eos and pad, padded with -100 as the Trainer pads gathered arrays."""
    rows = [
        tokenizer(text, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id, tokenizer.pad_token_id]
        for text in texts
    ]
    return np.array([row + [-100] * (max(map(len, rows)) - len(row)) for row in rows])


@pytest.mark.parametrize("use_cot", [False, True])
def test_compute_metrics_scores_generated_ids_against_collator_labels(use_cot):
    tokenizer = build_digit_tokenizer()
    rows = [
        {"question": "1 + 2", "cot": "1 + 2 = 3", "answer": "3"},
        {"question": "9 9 + 9", "cot": "9 9 + 9 = 8 0 1", "answer": "8 0 1"},
        {"question": "5 + 5", "cot": "5 + 5 = 0 1", "answer": "0 1"},
    ]
    generated = ["3", "8 0 2", "0 1 7"] if not use_cot else ["x #### 3", "8 0 1 = 2 #### 8 0 2", "#### 0 1 7"]
    labels = PauseDataCollator(tokenizer, use_cot=use_cot)(rows)["labels"].numpy()
    compute_metrics = exact_match_compute_metrics(tokenizer, use_cot=use_cot)
    scores = compute_metrics(EvalPrediction(predictions=_ids(tokenizer, generated), label_ids=labels))
    assert scores == score_answers(["3", "802", "017"], ["3", "801", "01"])


def test_compute_metrics_agrees_with_evaluate_exact_match_on_generated_ids():
    """The same model's continuations, scored by `compute_metrics` and by the standalone evaluation."""
    tokenizer = build_digit_tokenizer()
    tokenizer, model = add_pause_tokens(tokenizer, tiny_gpt2(tokenizer, seed=1), num=1)
    collator = PauseDataCollator(tokenizer, num_pause_tokens=1)
    _, rows = addition_splits(digits=1, train=0, test=4)
    continuations = []
    for row in rows:
        prompt = torch.tensor([collator.prompt_ids(row["question"])])
        output = model.generate(
            prompt,
            attention_mask=torch.ones_like(prompt),
            max_new_tokens=3,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id,
        )
        continuations.append(output[0, prompt.shape[1] :].tolist())
    padded = np.array([ids + [-100] * (3 - len(ids)) for ids in continuations])
    prediction = EvalPrediction(predictions=padded, label_ids=collator(list(rows))["labels"].numpy())
    expected = evaluate_exact_match(model, collator, rows, max_new_tokens=3)
    assert exact_match_compute_metrics(tokenizer)(prediction) == expected


def test_trainer_exact_match_is_the_metric_on_the_gathered_answers(tmp_path, monkeypatch):
    """Half the answers wrong in a known way: the trainer's eval metrics are `score_answers` of them, via the metric."""
    tokenizer = build_digit_tokenizer()
    _, rows = addition_splits(digits=2, train=0, test=6)
    wrong_last_digit = {str(d): str((d + 1) % 10) for d in range(10)}
    predicted = {
        row["question"]: row["answer"] if i % 2 else row["answer"][:-1] + wrong_last_digit[row["answer"][-1]]
        for i, row in enumerate(rows)
    }
    loads = []
    monkeypatch.setattr(hf_seqvcr.trainer, "load_metric", lambda: loads.append(1) or load_metric())
    args = sgd_config(tmp_path, eval_exact_match=True, per_device_eval_batch_size=4)
    trainer = SeqVCRTrainer(
        model=answering_model(tokenizer, predicted), args=args, eval_dataset=rows, processing_class=tokenizer
    )
    metrics = trainer.evaluate()
    expected = score_answers(
        [normalize_answer(predicted[row["question"]]) for row in rows],
        [normalize_answer(row["answer"]) for row in rows],
    )
    assert {k: metrics[f"eval_{k}"] for k in expected} == expected and loads == [1]
    assert 0 < expected["exact_match"] < 1


class _Echo(torch.nn.Module):
    """A 'model' whose greedy answer is fixed: exactly `continuation`, whatever the prompt."""

    def __init__(self, continuation: list[int]):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.continuation = continuation

    def generate(self, input_ids, **kwargs):
        return torch.cat([input_ids, torch.tensor([self.continuation] * len(input_ids))], dim=1)


def test_a_pause_written_inside_the_answer_makes_it_wrong():
    tokenizer, _ = add_pause_tokens(build_digit_tokenizer(), None, num=1)
    collator = PauseDataCollator(tokenizer, num_pause_tokens=1)
    digit = lambda text: tokenizer(text, add_special_tokens=False).input_ids  # noqa: E731
    pause, eos = collator.pause_ids[0], tokenizer.eos_token_id
    rows = [{"question": "5 + 7", "cot": "", "answer": "1 2"}]
    clean = evaluate_exact_match(_Echo([*digit("1"), *digit(" 2"), eos]), collator, rows)
    paused = evaluate_exact_match(_Echo([*digit("1"), pause, *digit(" 2"), eos]), collator, rows)
    assert clean["exact_match"] == 1.0 and paused["exact_match"] == 0.0


@pytest.mark.parametrize(
    "saved",
    [{"repetition_penalty": 1.5}, {"do_sample": True, "temperature": 5.0, "top_k": 3}, {"no_repeat_ngram_size": 1}],
)
def test_a_checkpoints_generation_config_does_not_change_exact_match(saved):
    """`generate` fills whatever a call leaves unset from `model.generation_config`; evaluation stays plain greedy."""
    tokenizer, model = add_pause_tokens(build_digit_tokenizer(), tiny_llama(build_digit_tokenizer(), seed=5), num=1)
    collator = PauseDataCollator(tokenizer, num_pause_tokens=1)
    _, rows = addition_splits(digits=2, train=0, test=6)
    plain = predict_answers(model, collator, rows, max_new_tokens=8)
    prompt = torch.tensor([collator.prompt_ids(rows[0]["question"])])
    greedy = model.generate(prompt, max_new_tokens=8, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    model.generation_config.update(**saved)
    torch.manual_seed(0)
    leaked = model.generate(prompt, max_new_tokens=8, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    assert saved.get("do_sample") or not torch.equal(leaked, greedy)  # control: the saved setting changes generate
    assert predict_answers(model, collator, rows, max_new_tokens=8) == plain
    assert model.generation_config.to_dict() == {**model.generation_config.to_dict(), **saved}  # and is restored


def test_the_training_mode_comes_back_when_evaluation_fails():
    tokenizer, model = add_pause_tokens(build_digit_tokenizer(), tiny_gpt2(build_digit_tokenizer()), num=1)
    collator = PauseDataCollator(tokenizer, num_pause_tokens=1)

    def fail(**kwargs):
        raise RuntimeError("out of memory")

    model.generate = fail
    model.train()
    with pytest.raises(RuntimeError, match="out of memory"):
        evaluate_exact_match(model, collator, [{"question": "1 + 2", "answer": "3"}])
    assert model.training  # dropout back on for the training that continues


def test_the_metric_is_loaded_once_for_all_evaluations(monkeypatch):
    loads = []
    real_load = evaluate.load
    monkeypatch.setattr(evaluate, "load", lambda *a, **k: loads.append(a) or real_load(*a, **k))
    load_metric.cache_clear()
    tokenizer = build_digit_tokenizer()
    _, rows = addition_splits(digits=1, train=0, test=3)
    model = answering_model(tokenizer, {row["question"]: row["answer"] for row in rows})
    for _ in range(3):
        assert evaluate_exact_match(model, PauseDataCollator(tokenizer), rows)["exact_match"] == 1.0
    assert len(loads) == 1
