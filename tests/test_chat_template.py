"""Saved tokenizers carry a chat template that renders exactly the training prompt, so `apply_chat_template` and
`pipeline("text-generation")` with chat messages answer as `evaluate_exact_match` scores."""

from __future__ import annotations

from pathlib import Path

import pytest
from peft import PeftModel
from tokenizers import processors
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig, pipeline

from data_builders import load_task_dataset
from hf_seqvcr import PauseDataCollator, add_pause_tokens
from hf_seqvcr.chat_template import set_pause_chat_template
from hf_seqvcr.evaluation import extract_answer, predict_answers
from hf_seqvcr.pretrained import load_tokenizer
from hf_seqvcr.scripts.train import main

ROOT = Path(__file__).resolve().parents[1]
PRETRAINED = ROOT / "recipes" / "multiplication" / "pretrained.yaml"
QUESTIONS = ["5 6 3 2 * 7 4 3 4", "12 + 34", "Natalia sold 48 clips.", " 7"]
CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def user(question: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": question}]


@pytest.mark.parametrize("pauses", [0, 1, 2, 8])
@pytest.mark.parametrize("distinct", [False, True], ids=["shared", "distinct"])
def test_the_saved_chat_template_renders_the_training_prompt(family, family_dirs, tmp_path, pauses, distinct):
    tokenizer, _ = add_pause_tokens(load_tokenizer(family_dirs[family]), None, pauses, distinct=distinct)
    tokenizer.save_pretrained(tmp_path)
    reloaded = AutoTokenizer.from_pretrained(tmp_path)
    collator = PauseDataCollator(tokenizer, num_pause_tokens=pauses, distinct_pause_embeddings=distinct)
    for question in QUESTIONS:
        rendered = reloaded.apply_chat_template(
            user(question), add_generation_prompt=True, tokenize=True, return_dict=False
        )
        assert list(rendered) == collator.prompt_ids(question)
    # a question with its answer renders as the training sequence, loss part included
    row = {"question": "12 * 34", "answer": "408"}
    conversation = [*user(row["question"]), {"role": "assistant", "content": row["answer"]}]
    rendered = reloaded.apply_chat_template(conversation, tokenize=True, return_dict=False)
    assert list(rendered) == collator([row])["input_ids"][0].tolist()


def test_a_chat_models_template_is_kept_and_the_pauses_follow_its_generation_prompt(family_dirs):
    tokenizer = load_tokenizer(family_dirs["llama3"])
    tokenizer.chat_template = CHATML
    before = {
        gen: tokenizer.apply_chat_template(user("1 + 2"), add_generation_prompt=gen, tokenize=False)
        for gen in (False, True)
    }
    tokenizer, _ = add_pause_tokens(tokenizer, None, 2, distinct=True)  # a template of its own: conversational
    set_pause_chat_template(tokenizer, ["<pause_0>", "<pause_1>"], conversational=True)  # again: not twice
    after = {
        gen: tokenizer.apply_chat_template(user("1 + 2"), add_generation_prompt=gen, tokenize=False)
        for gen in (False, True)
    }
    assert after == {False: before[False], True: before[True] + "<pause_0><pause_1>"}
    ids = tokenizer.apply_chat_template(user("1 + 2"), add_generation_prompt=True, tokenize=True, return_dict=False)
    assert list(ids)[-2:] == tokenizer.convert_tokens_to_ids(["<pause_0>", "<pause_1>"])
    with pytest.raises(ValueError, match="has none"):
        set_pause_chat_template(load_tokenizer(family_dirs["gpt2"]), [], conversational=True)


@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora-merged"])
@pytest.mark.parametrize("family_name", ["llama3", "llama2_bpe"])
def test_pipeline_with_chat_messages_answers_as_exact_match_evaluation(family_dirs, tmp_path, lora, family_name):
    """Fine-tuned by the recipe (llama3's base samples in its generation_config.json), then asked through
    `pipeline("text-generation", model=DIR)` with chat messages, greedy: the answers `predict_answers` scores."""
    output = tmp_path / "run"
    main(
        PRETRAINED,
        [
            "--model_name_or_path",
            str(family_dirs[family_name]),
            "--output_dir",
            str(output),
            "--report_to",
            "none",
            "--build_dataset",
            "multiplication --digits 2 --train-size 40 --validation-size 4 --test-size 8",
            "--method",
            "pause",
            "--max_train_samples",
            "16",
            "--max_steps",
            "1",
            "--per_device_train_batch_size",
            "8",
            "--learning_rate",
            "1e-4",
            "--save_strategy",
            "no",  # near the base: varied answers to compare
            *(["--use_peft", "true", "--lora_r", "4", "--lora_target_modules", "q_proj", "v_proj"] if lora else []),
        ],
    )
    tokenizer = AutoTokenizer.from_pretrained(output)
    if lora:  # an adapter: evaluate it on its base, serve it merged

        def adapted():
            base = AutoModelForCausalLM.from_pretrained(family_dirs[family_name])
            base.resize_token_embeddings(len(tokenizer))  # the adapter carries the trained rows
            return PeftModel.from_pretrained(base, output).eval()

        model, served = adapted(), tmp_path / "merged"
        adapted().merge_and_unload().save_pretrained(served)
        tokenizer.save_pretrained(served)
    else:
        model, served = AutoModelForCausalLM.from_pretrained(output), output
        assert not GenerationConfig.from_pretrained(output).do_sample  # saved greedy, whatever the base sampled
    rows = load_task_dataset(str(output / "_dataset"))["test"].to_list()
    collator = PauseDataCollator(load_tokenizer(output), num_pause_tokens=2)  # the `pause` method's two
    expected = predict_answers(model, collator, rows, max_new_tokens=12)
    generator = pipeline("text-generation", model=str(served))
    answers = []
    for row in rows:
        reply = generator(user(row["question"]), do_sample=False, max_new_tokens=12, skip_special_tokens=False)
        content = reply[0]["generated_text"][-1]["content"]
        answers.append(extract_answer(content.split(tokenizer.eos_token)[0], use_cot=False))
    assert answers == expected
    assert len(set(expected)) > 1  # the model answers different questions differently: the prompts matter


def test_a_tokenizer_the_template_cannot_reproduce_is_refused_and_keeps_its_own(family_dirs, caplog):
    """A prompt that opens with an ordinary byte-level token (`Ġ+`, whose string is not its text) has no template
    rendering: none is written, and training goes on."""
    tokenizer = load_tokenizer(family_dirs["gpt2"])
    opener = tokenizer.convert_tokens_to_ids("Ġ+")
    tokenizer.backend_tokenizer.post_processor = processors.TemplateProcessing(
        single="Ġ+ $A", special_tokens=[("Ġ+", opener)]
    )
    with pytest.raises(ValueError, match="would not reproduce the training prompt"):
        set_pause_chat_template(tokenizer, ["<pause>"], conversational=False)
    tokenizer, _ = add_pause_tokens(tokenizer, None, 1)  # training goes on, with a warning
    assert tokenizer.chat_template is None and "No chat template for this tokenizer" in caplog.text
    assert PauseDataCollator(tokenizer, num_pause_tokens=1).prompt_ids("12")[0] == opener
