"""Representational collapse (Barbero et al. 2024, Thm 4.2, Fig. 5): a sequence and the same sequence with its
last token repeated end in ever closer representations as they grow, until finite precision cannot tell them apart.

The probe measures the final-layer representation of the last token: `hidden_states[-1]` at the last position.
In transformers 5 that is the model's `last_hidden_state`, i.e. the output of the final norm (LLaMA's `norm`,
GPT-2's `ln_f`), which is exactly what the LM head reads (`final_hidden_state` and its test pin this). The paper
leaves pre- or post-norm open (App. B.1: `y_n = norm(v_n^(L))` is what predicts the next token); we take the
LM head's input because when it is identical the next-token distributions are identical, which is the operational
meaning of "indistinguishable". The raw output of the last block is not among HF's `hidden_states` at all.

Precision: the model runs in each dtype (a copy with its weights cast, so the caller's model is untouched), rather
than casting fp32 outputs. The paper's bf16 claim is about a model computing in bf16 — every layer rounds its
residual stream — and a bf16 copy reproduces that; casting the final fp32 vector would only model the last
rounding. Sequences run one at a time, unpadded: the quantity measured lives in the last bits, so it must not
depend on padding or on which other sequences share a batch.
"""

from __future__ import annotations

import copy
import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

import torch
from transformers import PreTrainedTokenizerBase

from .separators import SEPARATOR, join_items

DEFAULT_DTYPES = (torch.float32, torch.bfloat16)
BF16_FRACTION_BITS = 7  # bf16 keeps 8 significant bits, 7 of them stored
BF16_SMALLEST_SPACING_EXPONENT = -133  # spacing of bf16 subnormals, 2^(-126 - 7)
Variant = Literal["ones", "commas", "random"]
VARIANTS = ("ones", "commas", "random")


class PromptPair(NamedTuple):
    """Two token-id sequences to compare at their last token; ``length`` is the x-axis value plots use."""

    length: int
    first: list[int]
    second: list[int]


@dataclass(frozen=True)
class PairDistance:
    """Distance between the last-token representations of one pair, computed with the model in ``dtype``.

    ``bf16_resolution`` is the spacing of bf16 numbers at the largest entry of ``first``'s representation:
    entries that differ by less cannot both be kept apart after bf16 rounding (the threshold line of Fig. 5).
    """

    length: int
    dtype: str
    linf: float
    l2: float
    bf16_resolution: float


def bf16_spacing(value: float) -> float:
    """Gap between consecutive bf16 numbers at ``|value|``: ``2^(floor(log2|value|) - 7)``, ``2^-133`` near zero."""
    if not math.isfinite(value):
        raise ValueError(f"value={value!r} must be finite; check the model's hidden states for inf/NaN")
    if value == 0:
        return math.ldexp(1.0, BF16_SMALLEST_SPACING_EXPONENT)
    exponent = math.frexp(abs(value))[1] - 1  # |value| = m * 2^(e), m in [0.5, 1), so floor(log2|value|) = e - 1
    return math.ldexp(1.0, max(exponent - BF16_FRACTION_BITS, BF16_SMALLEST_SPACING_EXPONENT))


@torch.no_grad()
def final_hidden_state(model: torch.nn.Module, input_ids: Sequence[int]) -> torch.Tensor:
    """The last position's ``hidden_states[-1]`` for one unpadded sequence, shape (hidden,), in the model's dtype.

    Relies on transformers replacing the last recorded hidden state by ``last_hidden_state`` (after the final
    norm); tests/test_oversquashing.py pins that it equals the LM head's input for LLaMA and GPT-2.
    """
    device = next(model.parameters()).device
    ids = torch.tensor([list(input_ids)], dtype=torch.long, device=device)
    return model(input_ids=ids, output_hidden_states=True, use_cache=False).hidden_states[-1][0, -1]


def pair_distances(
    model: torch.nn.Module, pairs: Sequence[PromptPair], *, dtypes: Sequence[torch.dtype] = DEFAULT_DTYPES
) -> list[PairDistance]:
    """L∞ and L2 distances between the last-token representations of each pair, for each dtype (dtype-major)."""
    pairs = list(pairs)
    if not pairs:
        raise ValueError("pairs is empty; pass PromptPair(length, first, second) items, e.g. from prompt_pairs")
    if any(not pair.first or not pair.second for pair in pairs):
        raise ValueError("every pair needs two non-empty token-id sequences; drop the empty ones from pairs")
    limit = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    longest = max(max(len(pair.first), len(pair.second)) for pair in pairs)
    if limit is not None and longest > limit:
        raise ValueError(
            f"a pair has {longest} tokens, beyond the model's max_position_embeddings={limit}; pass shorter pairs"
        )
    for dtype in dtypes:
        if not dtype.is_floating_point:
            raise ValueError(f"dtypes must be floating-point torch dtypes, got {dtype}; pass e.g. torch.bfloat16")
    results = []
    was_training = model.training
    model.eval()
    try:
        for dtype in dtypes:
            runner = model if next(model.parameters()).dtype == dtype else copy.deepcopy(model).to(dtype)
            for pair in pairs:
                first = final_hidden_state(runner, pair.first).double()
                difference = first - final_hidden_state(runner, pair.second).double()  # exact in fp64
                results.append(
                    PairDistance(
                        length=pair.length,
                        dtype=str(dtype).removeprefix("torch."),
                        linf=float(difference.abs().max()),
                        l2=float(difference.norm()),
                        bf16_resolution=bf16_spacing(float(first.abs().max())),
                    )
                )
    finally:
        model.train(was_training)
    return results


def collapse_distances(
    model: torch.nn.Module,
    sequences: Sequence[Sequence[int]],
    *,
    dtypes: Sequence[torch.dtype] = DEFAULT_DTYPES,
) -> list[PairDistance]:
    """Thm 4.2's pairs: each sequence against itself with its last token repeated; ``length`` is its token count."""
    if any(len(sequence) == 0 for sequence in sequences):
        raise ValueError("sequences must be non-empty token-id lists: the last token is the one repeated")
    pairs = [PromptPair(len(sequence), list(sequence), [*sequence, sequence[-1]]) for sequence in sequences]
    return pair_distances(model, pairs, dtypes=dtypes)


def prompt_pairs(
    tokenizer: PreTrainedTokenizerBase,
    lengths: Iterable[int],
    *,
    variant: Variant = "ones",
    prefix: str = "",
    max_positions: int | None,
    separator_every: int = 3,
    seed: int = 0,
) -> list[PromptPair]:
    """The paper's Fig. 5 pairs for each n in ``lengths`` (n digits against n + 1), as token ids.

    - ``ones``: ``prefix + "1"·n`` vs ``prefix + "1"·(n+1)`` (the last token repeated);
    - ``commas``: the same digits with a comma after every ``separator_every``-th one (the paper's mitigation),
      so the pair no longer differs by a repeat alone;
    - ``random``: n - 1 uniform digits, the last of them not 1, then ``1``, vs the same followed by ``11``
      (digits drawn per n from ``seed``).

    The prefix is tokenized as text; the digits are added one token per symbol, so no BPE merge of ``111`` can
    hide the length (the paper had to account for such merges). A symbol that is not a single known token, a
    length <= 0, or a pair longer than ``max_positions`` (e.g. ``model.config.max_position_embeddings``; None
    for no limit) is a ValueError.
    """
    lengths = list(lengths)
    if variant not in VARIANTS:
        raise ValueError(f"variant={variant!r} must be one of {VARIANTS}")
    if not lengths or any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in lengths):
        raise ValueError(f"lengths={lengths!r} must be integers >= 1 (digits in the shorter prompt)")
    if isinstance(separator_every, bool) or not isinstance(separator_every, int) or separator_every < 1:
        raise ValueError(f"separator_every={separator_every!r} must be an integer >= 1 for variant='commas'")
    ids = _single_token_ids(tokenizer, {"ones": "1", "commas": "1" + SEPARATOR, "random": "0123456789"}[variant])
    prefix_ids = tokenizer(prefix, add_special_tokens=False)["input_ids"] if prefix else []

    pairs = []
    for n in lengths:
        head = _digits(variant, n, seed)
        texts = [head, head + "1"]
        if variant == "commas":
            texts = [join_items(text, "", separator_every) for text in texts]
        first, second = ([*prefix_ids, *(ids[symbol] for symbol in text)] for text in texts)
        if max_positions is not None and len(second) > max_positions:
            raise ValueError(
                f"lengths: n={n} makes a {len(second)}-token prompt with the prefix, beyond "
                f"max_positions={max_positions}; pass shorter lengths or a shorter prefix"
            )
        pairs.append(PromptPair(n, first, second))
    return pairs


def _digits(variant: Variant, n: int, seed: int) -> str:
    """The n digits of the shorter prompt: all ones, or random digits whose last two are a non-1 then a 1."""
    if variant != "random":
        return "1" * n
    rng = random.Random(f"{seed}:{n}")  # per n, so a length's digits do not depend on the other lengths asked
    body = [rng.choice("0123456789") for _ in range(n - 2)] + ([rng.choice("023456789")] if n > 1 else [])
    return "".join(body) + "1"


def _single_token_ids(tokenizer: PreTrainedTokenizerBase, symbols: str) -> dict[str, int]:
    """The id of each symbol, or a ValueError naming the first symbol that is not exactly one known token."""
    ids = {}
    for symbol in symbols:
        encoded = tokenizer(symbol, add_special_tokens=False)["input_ids"]
        if len(encoded) != 1 or encoded[0] == tokenizer.unk_token_id:
            raise ValueError(
                f"symbol {symbol!r} is not a single known token for this tokenizer (got ids {encoded}); the probe "
                "needs one token per digit: use a tokenizer with single-character digits, e.g. build_digit_tokenizer()"
            )
        ids[symbol] = encoded[0]
    return ids
