"""p-hop induction (Sanford et al., 2024; Saunshi et al., 2025, Def. A.1), generated so that all p hops exist.

With 1-based positions, ``find_1(v, i) = max({0} ∪ {j <= i : v[j-1] = v[i]})`` is the position right after the
most recent earlier occurrence of ``v[i]``, ``find_p = find_1 ∘ find_{p-1}``, and the answer is
``hop_p(v) = v[find_p(v, n)]`` (⊥ when ``find_p(v, n) = 0``).

    question: d b b d c d a d a b     answer: b
    (p = 2: the last b, 10, was last seen at 3, so land on 4, a d; that d was last seen at 1, so land on 2, a b)

Generation plants the chain first. Hop k leaves position ``i_{k-1}`` (``i_0 = n``), whose symbol is
``s_{k-1}``, and lands at ``i_k``: the pair of slots ``(i_k - 1, i_k)`` holds ``(s_{k-1}, s_k)`` with
``s_k != s_{k-1}``. The p pairs and the ``n - 1 - 2p`` single filler slots are shuffled into positions
``1..n-1`` (pair 1 rightmost), and every filler slot between pair k and position ``i_{k-1}`` avoids
``s_{k-1}``, so ``i_k - 1`` is really the most recent occurrence; slots left of pair p are free. The adjacent
slots ``i_k`` and ``i_{k-1} - 1`` hold ``s_k`` and ``s_{k-2}``, both different from ``s_{k-1}``, so every hop moves
strictly left (``find_1(v, i) = i`` would need ``v[i-1] = v[i]``) and never reaches 0. This is the
"pairs placed right to left, chain symbol forbidden in each gap" construction (docs/data_formats.md §3); it never
lets one hop's landing slot double as the next hop's occurrence slot (``... b a b`` read right to left).
"""

from __future__ import annotations

import argparse
import random
import string
from functools import partial
from math import comb

from datasets import DatasetDict

from . import cli
from .cli import BuilderTask, Options, add_split_arguments, require_int
from .distinct import Example, draw_distinct
from .splits import SplitSizes, split_in_order

DEFAULT_ALPHABET_SIZE = 4
DEFAULT_LENGTH = 32
DEFAULT_HOPS = 4
DEFAULT_SIZES = SplitSizes(train=1_000_000, validation=1_000, test=10_000)
LETTERS = string.ascii_lowercase


def sequence_count(*, alphabet_size: int, length: int, hops: int) -> int:
    """How many distinct sequences the generator can draw: chain symbols × layouts × filler symbols.

    With j filler slots left of pair p (free, any letter), the other ``f - j`` fillers sit in the gaps (one
    letter forbidden) and the first p - 1 pairs are spread among them in ``C(p - 1 + f - j, p - 1)`` ways.
    """
    fillers = length - 1 - 2 * hops
    layouts = sum(
        comb(hops - 1 + fillers - free, hops - 1) * alphabet_size**free * (alphabet_size - 1) ** (fillers - free)
        for free in range(fillers + 1)
    )
    return alphabet_size * (alphabet_size - 1) ** hops * layouts


def check_options(
    *, alphabet_size: int, length: int, hops: int, train_size: int, validation_size: int, test_size: int
) -> None:
    """A ValueError naming the bad option; cheap, so it runs before any drawing."""
    sizes = SplitSizes(train=train_size, validation=validation_size, test=test_size)
    require_int("alphabet_size", alphabet_size, minimum=2, maximum=len(LETTERS), example=DEFAULT_ALPHABET_SIZE)
    require_int("hops", hops, minimum=1, example=DEFAULT_HOPS)
    if isinstance(length, bool) or not isinstance(length, int) or length < 2 * hops + 1:
        raise ValueError(
            f"length={length!r} must be an integer >= 2 * hops + 1 = {2 * hops + 1} (each hop plants two "
            "symbols before the last one); raise --length or lower --hops"
        )
    sizes.check_capacity(
        sequence_count(alphabet_size=alphabet_size, length=length, hops=hops),
        f"{hops}-hop sequences of length {length} over {alphabet_size} letters",
        "lower --train-size or raise --length / --alphabet-size",
    )


def build(
    *,
    alphabet_size: int = DEFAULT_ALPHABET_SIZE,
    length: int = DEFAULT_LENGTH,
    hops: int = DEFAULT_HOPS,
    train_size: int = DEFAULT_SIZES.train,
    validation_size: int = DEFAULT_SIZES.validation,
    test_size: int = DEFAULT_SIZES.test,
    seed: int,
) -> DatasetDict:
    """Train/validation/test sequences with distinct questions, drawn with ``seed``."""
    check_options(
        alphabet_size=alphabet_size,
        length=length,
        hops=hops,
        train_size=train_size,
        validation_size=validation_size,
        test_size=test_size,
    )
    sizes = SplitSizes(train=train_size, validation=validation_size, test=test_size)
    draw = partial(draw_sequence, alphabet_size=alphabet_size, length=length, hops=hops)
    return split_in_order(draw_distinct(draw, sizes.total, seed), sizes)


def draw_sequence(rng: random.Random, *, alphabet_size: int, length: int, hops: int) -> Example:
    """One (question, "", answer): the sequence as space-separated letters and ``hop_p`` of it."""
    alphabet = LETTERS[:alphabet_size]
    chain = [rng.choice(alphabet)]  # s_0 .. s_p, consecutive symbols different
    for _ in range(hops):
        chain.append(rng.choice([symbol for symbol in alphabet if symbol != chain[-1]]))
    units = [True] * hops + [False] * (length - 1 - 2 * hops)  # True: a hop pair, False: a filler slot
    rng.shuffle(units)
    sequence = [chain[0]]  # built right to left
    hop = 0
    for is_pair in reversed(units):
        if is_pair:
            hop += 1
            sequence += [chain[hop], chain[hop - 1]]
        else:
            forbidden = chain[hop] if hop < hops else None  # the symbol the next hop looks for
            sequence.append(rng.choice([symbol for symbol in alphabet if symbol != forbidden]))
    return " ".join(reversed(sequence)), "", chain[-1]


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--alphabet-size",
        type=int,
        default=DEFAULT_ALPHABET_SIZE,
        help=f"letters a, b, ... (default {DEFAULT_ALPHABET_SIZE}, as in the paper; at most {len(LETTERS)})",
    )
    parser.add_argument(
        "--length",
        type=int,
        default=DEFAULT_LENGTH,
        help=f"sequence length n (default {DEFAULT_LENGTH}, sized for a CPU; the paper uses 256)",
    )
    parser.add_argument(
        "--hops",
        type=int,
        default=DEFAULT_HOPS,
        help=f"hops p (default {DEFAULT_HOPS}; the paper uses 16 and 32 with --length 256)",
    )
    add_split_arguments(parser, DEFAULT_SIZES)


def _card(options: Options) -> dict[str, object]:
    alphabet_size, length, hops = options["alphabet_size"], options["length"], options["hops"]
    return dict(
        task="p-hop-induction",
        summary=(
            f"p-hop induction with p = {hops} over sequences of length {length} on the first "
            f"{alphabet_size} lowercase letters (Sanford et al., 2024; Saunshi et al., 2025, Def. A.1). "
            "Starting at the last symbol, each hop jumps to the position right after the most recent earlier "
            "occurrence of the current symbol; the answer is the symbol reached after p hops. The question is "
            "the sequence as space-separated letters, the answer one letter, and there is no chain of thought. "
            "Sequences are generated with the hop chain planted first (adjacent (occurrence, landing) pairs "
            "shuffled among filler slots, fillers between two chain positions avoiding the symbol looked for), so "
            "every hop exists and moves strictly left. Questions are distinct in and across splits (Python "
            "`random.Random` with the seed below)."
        ),
        parameters={"alphabet_size": alphabet_size, "length": length, "hops": hops},
        license="apache-2.0",
        license_note="synthetic data generated by hf-seqvcr's Apache-2.0 code after Saunshi et al.'s description.",
        citations=["saunshi2025reasoning", "sanford2024transformers"],
    )


TASK = BuilderTask(
    name="phop",
    description="Build p-hop induction data (Sanford et al. 2024, as in Saunshi et al. 2025).",
    add_arguments=_add_arguments,
    config_name=lambda options: f"phop-a{options['alphabet_size']}-n{options['length']}-p{options['hops']}",
    config_name_help="phop-a<alphabet-size>-n<length>-p<hops>, e.g. phop-a4-n32-p4",
    check=check_options,
    build=build,
    card=_card,
)


def main(argv: list[str] | None = None) -> int:
    return cli.main(TASK, argv)


if __name__ == "__main__":
    raise SystemExit(main())
