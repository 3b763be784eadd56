"""The digit tokenizer: one token per digit, Deng et al.'s lines decode back byte for byte, saves like any HF
tokenizer."""

from transformers import AutoTokenizer

from hf_seqvcr import build_digit_tokenizer

LINE = "5 6 3 2 * 7 4 3 4||5 9 4 7 1 + 0 5 3 6 4 0 #### 5 4 8 3 6 0 1 0"


def test_every_digit_is_one_token_and_lines_round_trip():
    tokenizer = build_digit_tokenizer()
    ids = tokenizer(LINE, add_special_tokens=False)["input_ids"]
    assert len(ids) == len(LINE.replace(" ", ""))
    assert tokenizer.unk_token_id not in ids
    assert tokenizer.decode(ids) == LINE


def test_words_and_whitespace_normalise_to_single_spaces():
    tokenizer = build_digit_tokenizer()
    text = "Natalia sold 48 clips,\nthen  half as many."
    assert tokenizer.decode(tokenizer(text)["input_ids"]) == "Natalia sold 48 clips, then half as many."


def test_saves_and_reloads_with_auto_tokenizer(tmp_path):
    tokenizer = build_digit_tokenizer()
    tokenizer.save_pretrained(tmp_path)
    reloaded = AutoTokenizer.from_pretrained(tmp_path)
    assert reloaded(LINE)["input_ids"] == tokenizer(LINE)["input_ids"]
    assert (reloaded.pad_token, reloaded.eos_token, reloaded.unk_token) == ("<pad>", "<eos>", "<unk>")
