"""Pause tokens: registration, batches with masked labels, and a save/reload round trip."""

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from hf_seqvcr import (
    PauseDataCollator,
    add_pause_tokens,
    build_digit_tokenizer,
    pause_token_ids,
    restore_pause_settings,
)
from hf_seqvcr.pause import IGNORE_INDEX
from tiny import tiny_gpt2, tiny_llama


@pytest.mark.parametrize(
    "distinct, expected", [(False, ["<pause>"] * 3), (True, ["<pause_0>", "<pause_1>", "<pause_2>"])]
)
def test_add_pause_tokens_registers_special_tokens_and_grows_embeddings(distinct, expected):
    tokenizer = build_digit_tokenizer()
    before = len(tokenizer)
    tokenizer, model = add_pause_tokens(tokenizer, tiny_gpt2(tokenizer), num=3, distinct=distinct)
    ids = pause_token_ids(tokenizer, 3)
    assert tokenizer.convert_ids_to_tokens(ids) == expected
    assert len(tokenizer) == before + len(set(expected))
    assert model.get_input_embeddings().num_embeddings == len(tokenizer)
    assert model.get_output_embeddings().weight.shape[0] == len(tokenizer)
    assert restore_pause_settings(model) == 3
    # special tokens are never split and vanish from decoded answers
    encoded = tokenizer("1 2" + "".join(expected), add_special_tokens=False)["input_ids"]
    assert encoded[-3:] == ids
    assert tokenizer.decode(encoded, skip_special_tokens=True) == "1 2"


def test_collator_masks_question_separator_pauses_and_padding():
    tokenizer, _ = add_pause_tokens(build_digit_tokenizer(), None, num=2)
    collator = PauseDataCollator(tokenizer, num_pause_tokens=2)
    rows = [{"question": "1 2 + 3 4", "answer": "4 6 0"}, {"question": "5 + 6", "answer": "1 1"}]
    batch = collator(rows)
    pause = tokenizer.convert_tokens_to_ids("<pause>")
    eos = tokenizer.eos_token_id
    first = batch["input_ids"][0].tolist()
    question = tokenizer("1 2 + 3 4", add_special_tokens=False)["input_ids"]
    answer = tokenizer("4 6 0", add_special_tokens=False)["input_ids"]
    assert first == [*question, eos, pause, pause, *answer, eos]
    assert batch["labels"][0].tolist() == [IGNORE_INDEX] * (len(question) + 3) + answer + [eos]
    # the shorter row is right-padded, and padding is neither attended to nor learned
    second_length = int(batch["attention_mask"][1].sum())
    assert batch["attention_mask"][1, second_length:].eq(0).all()
    assert batch["labels"][1, second_length:].eq(IGNORE_INDEX).all()
    assert batch["input_ids"][1, second_length:].eq(tokenizer.pad_token_id).all()


def test_collator_with_cot_targets_the_chain_then_the_answer():
    tokenizer = build_digit_tokenizer()
    collator = PauseDataCollator(tokenizer, use_cot=True)
    batch = collator([{"question": "2 * 3", "cot": "6", "answer": "6"}])
    labelled = batch["labels"][0][batch["labels"][0] != IGNORE_INDEX].tolist()
    assert tokenizer.decode(labelled, skip_special_tokens=True) == "6 #### 6"
    with pytest.raises(ValueError, match="cot"):
        collator([{"question": "2 * 3", "answer": "6"}])


@pytest.mark.parametrize("build", [tiny_gpt2, tiny_llama])
def test_round_trip_keeps_token_ids_and_logits(tmp_path, build):
    tokenizer = build_digit_tokenizer()
    tokenizer, model = add_pause_tokens(tokenizer, build(tokenizer), num=2, distinct=True)
    model.eval()
    text = "3 4 + 5 6<pause_0><pause_1>"
    ids = tokenizer(text, return_tensors="pt", add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logits = model(ids).logits
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)

    reloaded_tokenizer = AutoTokenizer.from_pretrained(tmp_path)
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    reloaded_ids = reloaded_tokenizer(text, return_tensors="pt", add_special_tokens=False)["input_ids"]
    assert torch.equal(reloaded_ids, ids)
    assert pause_token_ids(reloaded_tokenizer, 2) == pause_token_ids(tokenizer, 2)
    assert restore_pause_settings(reloaded) == 2
    with torch.no_grad():
        torch.testing.assert_close(reloaded(reloaded_ids).logits, logits)


def test_negative_pause_count_is_rejected():
    with pytest.raises(ValueError, match="num_pause_tokens"):
        add_pause_tokens(build_digit_tokenizer(), None, num=-1)
