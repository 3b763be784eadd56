"""A character-level tokenizer for models trained from scratch on arithmetic."""

from __future__ import annotations

import string

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers
from transformers import PreTrainedTokenizerFast

PAD, EOS, UNK = "<pad>", "<eos>", "<unk>"


def build_digit_tokenizer() -> PreTrainedTokenizerFast:
    """One token per printable character, with a second variant that carries the preceding space.

    The space variant mirrors GPT-2's " 7" tokens: Deng et al.'s space-separated digits cost one token each and
    decode back byte for byte, and every digit is its own token, so no multi-digit merge hides the arithmetic.
    `<eos>` doubles as BOS and as the question/answer separator, as in Deng et al.'s GPT-2 setup.
    """
    characters = [c for c in string.printable if not c.isspace()]
    pieces = [PAD, EOS, UNK, " "] + characters + [" " + c for c in characters]
    backend = Tokenizer(models.WordLevel({piece: i for i, piece in enumerate(pieces)}, unk_token=UNK))
    backend.normalizer = normalizers.Replace(Regex(r"\s+"), " ")
    backend.pre_tokenizer = pre_tokenizers.Split(Regex(r" ?\S| "), behavior="isolated")
    backend.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(tokenizer_object=backend, pad_token=PAD, eos_token=EOS, bos_token=EOS, unk_token=UNK)
