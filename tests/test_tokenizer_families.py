"""Pretrained models of every tokenizer family (tests/tokenizer_families.py): prompts follow the model's own
conventions (BOS), budgets do not depend on how the reference is tokenized, lengths are checked before training,
and the recipe fine-tunes, scores, pushes and reloads a local pretrained directory."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

from data_builders import load_task_dataset
from hf_seqvcr import (
    PauseDataCollator,
    add_pause_tokens,
    build_digit_tokenizer,
    evaluate_exact_match,
    load_pretrained,
)
from hf_seqvcr.evaluation import predict_answers
from hf_seqvcr.pause import IGNORE_INDEX, max_positions, pause_token_ids
from hf_seqvcr.pretrained import load_tokenizer, pretrained_collator
from hf_seqvcr.scripts.train import main, parse
from hub_server import USER

ROOT = Path(__file__).resolve().parents[1]
PRETRAINED = ROOT / "recipes" / "multiplication" / "pretrained.yaml"
DEMO = ROOT / "recipes" / "multiplication" / "demo.yaml"
ADDS_BOS = {"digits": False, "gpt2": False, "llama3": True, "llama2_bpe": True, "llama2_unigram": True}


def pretrained(directory: Path, pauses: int = 2, distinct: bool = False):
    tokenizer = load_tokenizer(directory)
    tokenizer, model = add_pause_tokens(
        tokenizer, AutoModelForCausalLM.from_pretrained(directory), pauses, distinct=distinct
    )
    return model, tokenizer, PauseDataCollator(tokenizer, num_pause_tokens=pauses, distinct_pause_embeddings=distinct)


class Spells(torch.nn.Module):
    """A 'model' whose greedy answer is fixed: `continuation` then eos, cut at `max_new_tokens` as generate cuts."""

    def __init__(self, continuation: list[int]):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.continuation = continuation

    def generate(self, input_ids, max_new_tokens, **kwargs):
        return torch.cat([input_ids, torch.tensor([self.continuation[:max_new_tokens]] * len(input_ids))], dim=1)


def test_the_prompt_starts_with_bos_exactly_when_the_tokenizer_adds_one(family, family_dirs):
    _, tokenizer, collator = pretrained(family_dirs[family])
    question, answer = "12 * 34", "804"
    own = tokenizer(question)["input_ids"]  # the model's own convention for a text: with its BOS or without
    plain = tokenizer(question, add_special_tokens=False)["input_ids"]
    answer_ids = tokenizer(answer, add_special_tokens=False)["input_ids"]
    pauses, eos = list(collator.pause_ids), tokenizer.eos_token_id
    batch = collator([{"question": question, "answer": answer}])
    prompt = own[: len(own) - len(plain)] + plain + [eos] + pauses
    assert batch["input_ids"][0].tolist() == prompt + answer_ids + [eos]
    assert batch["labels"][0].tolist() == [IGNORE_INDEX] * len(prompt) + answer_ids + [eos]
    assert (batch["input_ids"][0, 0].item() == tokenizer.bos_token_id != eos) == ADDS_BOS[family]
    assert collator.prompt_ids(question) == prompt  # generation prompts are the training prompts
    with_pause = tokenizer("12" + "<pause>" + "3", add_special_tokens=False)["input_ids"]
    assert pauses[0] in with_pause  # a pause is one id and never merges with its neighbours


def test_the_digit_tokenizer_layout_is_unchanged():
    """Byte for byte the layout from-scratch models were trained with before the BOS rule (no BOS added)."""
    tokenizer, _ = add_pause_tokens(build_digit_tokenizer(), None, num=2)
    batch = PauseDataCollator(tokenizer, num_pause_tokens=2)([{"question": "1 2 + 3 4", "answer": "4 6 0"}])
    assert batch["input_ids"][0].tolist() == [5, 100, 170, 101, 102, 1, 192, 192, 8, 104, 98, 1]


@pytest.mark.parametrize("questions_only", [False, True])
def test_a_right_answer_in_more_tokens_than_the_reference_is_not_cut_off(family, family_dirs, questions_only):
    """`700 00` is the reference; the model writes `7 0 0 0 0` (more tokens under digit-grouping BPE or Metaspace)."""
    _, tokenizer, collator = pretrained(family_dirs[family])
    spelled = tokenizer("7 0 0 0 0", add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    rows = [{"question": "35 * 2000", "answer": "700 00"}]
    if questions_only:  # inference on new questions: no answer column, no placeholder
        assert predict_answers(Spells(spelled), collator, ["35 * 2000"]) == ["70000"]
        assert predict_answers(Spells(spelled), collator, [{"question": "35 * 2000"}]) == ["70000"]
    else:
        assert evaluate_exact_match(Spells(spelled), collator, rows)["exact_match"] == 1.0


def test_rows_longer_than_the_models_positions_are_refused_with_the_count_and_the_limit(family, family_dirs):
    model, tokenizer, collator = pretrained(family_dirs[family])
    limit = max_positions(model, tokenizer)
    assert limit == 256  # tokenizer_families.MAX_POSITIONS
    rows = [{"question": "1 2", "answer": "3"}, {"question": "1 " * 300, "answer": "3"}]
    collator.check_lengths(rows[:1], limit)
    with pytest.raises(ValueError, match="1 of 2 rows of `train` are longer than the model's 256 positions"):
        collator.check_lengths(rows, limit, argument="train")


def test_the_recipe_refuses_rows_past_the_models_positions_before_training(family_dirs, tmp_path):
    output = tmp_path / "out"
    with pytest.raises(SystemExit, match=r"rows of `train split` are longer than the model's 256 positions"):
        main(
            PRETRAINED,
            [
                "--model_name_or_path",
                str(family_dirs["llama3"]),
                "--build_dataset",
                "gsm8k",
                "--max_train_samples",
                "200",
                "--max_steps",
                "1",
                "--output_dir",
                str(output),
                "--report_to",
                "none",
            ],
        )
    assert not (output / "checkpoint-1").exists() and not (output / "model.safetensors").exists()


def test_distinct_pauses_on_a_checkpoint_that_has_the_shared_one_are_the_ones_used(family_dirs):
    tokenizer, model = add_pause_tokens(load_tokenizer(family_dirs["llama3"]), None, 2)
    directory = family_dirs["llama3"]
    tokenizer, model = add_pause_tokens(tokenizer, AutoModelForCausalLM.from_pretrained(directory), 2, distinct=True)
    distinct = tokenizer.convert_tokens_to_ids(["<pause_0>", "<pause_1>"])
    assert list(pretrained_collator(tokenizer, model.config).pause_ids) == distinct  # what the config records
    assert pause_token_ids(tokenizer, 2, distinct=True) == distinct
    with pytest.raises(ValueError, match="both the shared <pause> and distinct"):
        PauseDataCollator(tokenizer, num_pause_tokens=2)  # never silently the shared one


@pytest.mark.parametrize("spare_rows", [0, 8])
def test_pause_rows_start_at_the_mean_embedding_whether_grown_or_spare(spare_rows):
    tokenizer = build_digit_tokenizer()
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer) + spare_rows,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
    )
    model = LlamaForCausalLM(config)
    known = len(tokenizer)
    mean_in = model.get_input_embeddings().weight[:known].mean(dim=0)
    mean_out = model.get_output_embeddings().weight[:known].mean(dim=0)
    tokenizer, model = add_pause_tokens(tokenizer, model, 2, distinct=True)
    for pause in pause_token_ids(tokenizer, 2):
        torch.testing.assert_close(model.get_input_embeddings().weight[pause], mean_in)
        torch.testing.assert_close(model.get_output_embeddings().weight[pause], mean_out)


def test_a_pretrained_model_flag_replaces_the_configs_model_and_the_reverse(tmp_path):
    _, model, _ = parse(DEMO, ["--model_name_or_path", "some/model", "--output_dir", str(tmp_path)])
    assert (model.model_name_or_path, model.model_config) == ("some/model", None)
    _, model, _ = parse(PRETRAINED, ["--model_config", "tiny", "--output_dir", str(tmp_path)])
    assert (model.model_name_or_path, model.model_config) == (None, "tiny")


def test_a_config_that_sets_both_models_is_named(tmp_path, capsys):
    config = tmp_path / "both.yaml"
    config.write_text("model_config: tiny\nmodel_name_or_path: some/model\nbuild_dataset: lis\n")
    with pytest.raises(SystemExit):
        parse(DEMO, ["--config", str(config), "--output_dir", str(tmp_path)])
    assert f"{config} sets model_config, model_name_or_path" in capsys.readouterr().err


def test_the_recipe_fine_tunes_a_pretrained_directory_and_it_reloads_from_the_hub(family, family_dirs, hub, tmp_path):
    """Train (the pretrained YAML, a tiny local model) → results.json → push → `load_pretrained` from the Hub gives
    the same test scores; the saved tokenizer's chat template renders the training prompt."""
    output, repo_id = tmp_path / "out", f"{USER}/family-{family}-{uuid.uuid4().hex[:6]}"
    results = main(
        PRETRAINED,
        [
            "--model_name_or_path",
            str(family_dirs[family]),
            "--output_dir",
            str(output),
            "--report_to",
            "none",
            "--build_dataset",
            "multiplication --digits 2 --train-size 40 --validation-size 4 --test-size 8",
            "--max_train_samples",
            "16",
            "--max_steps",
            "2",
            "--per_device_train_batch_size",
            "8",
            "--seqvcr_proj_dim",
            "16",
            "--save_strategy",
            "no",
            "--push_to_hub",
            "--hub_model_id",
            repo_id,
        ],
    )
    assert json.loads((output / "results.json").read_text())["model"] == str(family_dirs[family])
    model, tokenizer, collator = load_pretrained(repo_id)
    test = load_task_dataset(str(output / "_dataset"))["test"]
    scores = evaluate_exact_match(model, collator, test)
    assert scores["exact_match"] == results["test_exact_match"]
    assert scores["position_accuracy"] == results["test_position_accuracy"]
    for question in test["question"]:
        messages = [{"role": "user", "content": question}]
        rendered = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=False)
        assert list(rendered) == collator.prompt_ids(question)
    assert (collator.prompt_ids("1")[0] == tokenizer.bos_token_id != tokenizer.eos_token_id) == ADDS_BOS[family]


def test_batched_generation_equals_one_by_one_with_the_models_bos(family, family_dirs):
    model, _, collator = pretrained(family_dirs[family])
    questions = ["1 + 2", "345 + 6789", "9 * 99", "123456 - 7"]  # different lengths: real left padding after BOS
    batched = predict_answers(model, collator, questions, batch_size=4, max_new_tokens=6)
    assert batched == [predict_answers(model, collator, [q], batch_size=1, max_new_tokens=6)[0] for q in questions]


def test_the_reference_written_back_scores_one(family, family_dirs):
    """Forced outputs: a model that writes each reference's own tokens then eos is right on every row."""
    _, _, collator = pretrained(family_dirs[family])
    rows = [{"question": "35 * 2000", "answer": "700 00"}, {"question": "12 * 34", "answer": "8 0 4"}]
    for row in rows:
        model = Spells(collator.target_ids(row))
        assert evaluate_exact_match(model, collator, [row])["exact_match"] == 1.0
