"""Tokenizers built in-process to mimic the families users fine-tune, each saved with a tiny model as a pretrained
directory (`save_pretrained`), so tests exercise real conventions without downloading anything.

- ``gpt2``: byte-level BPE, no pad token, no BOS added (GPT-2's ``<|endoftext|>`` is bos and eos).
- ``llama3``: byte-level BPE whose pre-tokenizer groups digits in threes; ``<|begin_of_text|>`` opens every sequence;
  its generation_config.json samples, as Meta's does.
- ``llama2_bpe`` / ``llama2_unigram``: SentencePiece-style Metaspace (``▁`` marks a word start) with ``<s>`` added:
  BPE prepending ``▁`` to a text's first word only, as transformers' ``LlamaTokenizer`` (legacy=False) does, and
  Unigram prepending it to every text segment, as LLaMA-2's and Mistral's tokenizer.json do.
- ``digits``: the project's digit tokenizer (from-scratch models), for comparison.
"""

from __future__ import annotations

import random
from pathlib import Path

from tokenizers import (
    Regex,
    Tokenizer,
    decoders,
    models,
    normalizers,
    pre_tokenizers,
    processors,
    trainers,
)
from transformers import (
    GenerationConfig,
    PreTrainedTokenizerFast,
)

from hf_seqvcr import build_digit_tokenizer
from tiny import tiny_llama

FAMILIES = ("digits", "gpt2", "llama3", "llama2_bpe", "llama2_unigram")
MAX_POSITIONS = 256


def _corpus(seed: int = 0) -> list[str]:
    """Arithmetic in the builders' formats and a few words: enough for merges such as `123` and ` the`."""
    rng = random.Random(seed)
    lines = []
    for _ in range(400):
        a, b = rng.randrange(10 ** rng.randint(1, 5)), rng.randrange(10 ** rng.randint(1, 5))
        lines += [f"{a} * {b} = {a * b}", " ".join(str(a)) + " + " + " ".join(str(b)), f"{a}+{b}={a + b} #### {b}"]
    lines += ["Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May."] * 5
    return lines


def _byte_level(digits_in_threes: bool, specials: list[str]) -> Tokenizer:
    backend = Tokenizer(models.BPE())
    split = [pre_tokenizers.Split(Regex(r"\p{N}{1,3}"), behavior="isolated")] if digits_in_threes else []
    backend.pre_tokenizer = pre_tokenizers.Sequence([*split, pre_tokenizers.ByteLevel(add_prefix_space=False)])
    backend.decoder = decoders.ByteLevel()
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=specials, initial_alphabet=alphabet, show_progress=False
    )
    backend.train_from_iterator(_corpus(), trainer)
    backend.post_processor = processors.ByteLevel(trim_offsets=False)
    return backend


def _metaspace(model: str) -> Tokenizer:
    specials = ["<unk>", "<s>", "</s>"]
    if model == "bpe":
        backend = Tokenizer(models.BPE(unk_token="<unk>", fuse_unk=True, byte_fallback=False))
        trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=specials, show_progress=False)
    else:
        backend = Tokenizer(models.Unigram())
        trainer = trainers.UnigramTrainer(
            vocab_size=300, special_tokens=specials, unk_token="<unk>", show_progress=False
        )
    backend.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split("▁", behavior="merged_with_next"),
            pre_tokenizers.Digits(individual_digits=True),
        ]
    )
    backend.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.Fuse(), decoders.Strip(" ", 1, 0)])
    backend.train_from_iterator(_corpus(), trainer)
    backend.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", backend.token_to_id("<s>"))]
    )
    return backend


def build_family_tokenizer(family: str) -> PreTrainedTokenizerFast:
    """`family`'s tokenizer as `AutoTokenizer.from_pretrained` would return it (no pad token, but for digits)."""
    if family == "digits":
        return build_digit_tokenizer()
    if family == "gpt2":
        backend = _byte_level(False, ["<|endoftext|>"])
        return PreTrainedTokenizerFast(
            tokenizer_object=backend, bos_token="<|endoftext|>", eos_token="<|endoftext|>", unk_token="<|endoftext|>"
        )
    if family == "llama3":
        backend = _byte_level(True, ["<|begin_of_text|>", "<|end_of_text|>"])
        bos = "<|begin_of_text|>"
        backend.post_processor = processors.Sequence(
            [
                processors.ByteLevel(trim_offsets=False),
                processors.TemplateProcessing(
                    single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, backend.token_to_id(bos))]
                ),
            ]
        )
        return PreTrainedTokenizerFast(tokenizer_object=backend, bos_token=bos, eos_token="<|end_of_text|>")
    if family in ("llama2_bpe", "llama2_unigram"):
        backend = _metaspace(family.removeprefix("llama2_"))
        if family == "llama2_bpe":  # as transformers' LlamaTokenizer builds it (legacy=False): ▁ on the first word
            backend.normalizer = None
            backend.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=False)
        return PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<s>", eos_token="</s>", unk_token="<unk>")
    raise ValueError(f"unknown family {family!r}; one of {FAMILIES}")


def save_family_model(family: str, directory: Path, *, hidden: int = 32, layers: int = 2, seed: int = 0) -> Path:
    """A tiny LLaMA with `family`'s tokenizer saved to `directory` by `save_pretrained`: a local 'pretrained' model."""
    tokenizer = build_family_tokenizer(family)
    tokenizer.model_max_length = MAX_POSITIONS
    model = tiny_llama(tokenizer, hidden=hidden, layers=layers, seed=seed, positions=MAX_POSITIONS)
    config = model.config
    if family == "llama3":  # as Meta ships it: sampling at temperature 0.6, top-p 0.9
        model.generation_config = GenerationConfig(
            do_sample=True,
            temperature=0.6,
            top_p=0.9,
            bos_token_id=config.bos_token_id,
            eos_token_id=config.eos_token_id,
        )
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory
