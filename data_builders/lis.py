"""Longest increasing subsequence with the dynamic-programming table as chain of thought (Feng et al., 2023).

Sequences are sampled like Feng et al.'s generator, so answers spread over 1..``--length`` instead of clustering
near 2·sqrt(n) as for uniform sequences: one to three strictly increasing runs (3..n numbers in all) are planted
at random positions of an otherwise uniform sequence. The chain of thought is ``best[i]``, the length of the
longest strictly increasing subsequence ending at position i; the answer is its maximum.

    question: 12 3 40 7 41     cot: 1 1 2 2 3     answer: 3
"""

from __future__ import annotations

import argparse
import random
from functools import partial

from datasets import DatasetDict

from . import cli
from .cli import BuilderTask, Options, add_split_arguments
from .distinct import Example, draw_distinct
from .splits import SplitSizes, split_in_order

DEFAULT_LENGTH = 16
DEFAULT_MAX_VALUE = 150
DEFAULT_SIZES = SplitSizes(train=1_000_000, validation=1_000, test=100_000)
MIN_LENGTH = 3  # the planted runs hold 3..length numbers, as in Feng et al.'s generator


def check_options(*, length: int, max_value: int, train_size: int, validation_size: int, test_size: int) -> None:
    """A ValueError naming the bad option; cheap, so it runs before any drawing."""
    sizes = SplitSizes(train=train_size, validation=validation_size, test=test_size)
    if isinstance(length, bool) or not isinstance(length, int) or length < MIN_LENGTH:
        raise ValueError(f"length={length!r} must be an integer >= {MIN_LENGTH}; pass e.g. --length 16")
    if isinstance(max_value, bool) or not isinstance(max_value, int) or max_value < length:
        raise ValueError(
            f"max_value={max_value!r} must be an integer >= length={length} (a planted increasing run can be "
            "--length numbers long); raise --max-value"
        )
    sizes.check_capacity(
        max_value**length,
        f"sequences of length {length} over 1..{max_value}",
        "lower --train-size or raise --max-value",
    )


def build(
    *,
    length: int = DEFAULT_LENGTH,
    max_value: int = DEFAULT_MAX_VALUE,
    train_size: int = DEFAULT_SIZES.train,
    validation_size: int = DEFAULT_SIZES.validation,
    test_size: int = DEFAULT_SIZES.test,
    seed: int,
) -> DatasetDict:
    """Train/validation/test sequences with distinct questions, drawn with ``seed``."""
    check_options(
        length=length, max_value=max_value, train_size=train_size, validation_size=validation_size, test_size=test_size
    )
    sizes = SplitSizes(train=train_size, validation=validation_size, test=test_size)
    draw = partial(draw_sequence, length=length, max_value=max_value)
    return split_in_order(draw_distinct(draw, sizes.total, seed), sizes)


def draw_sequence(rng: random.Random, *, length: int, max_value: int) -> Example:
    """One (question, cot, answer): the sequence, its DP table, the LIS length, all space-separated integers."""
    planted_total = rng.randint(MIN_LENGTH, length)
    runs = rng.randint(1, 3)
    if runs == 1:
        run_sizes = [planted_total]
    elif runs == 2:
        first = rng.randint(1, planted_total // 2 + 1)
        run_sizes = [first, planted_total - first]
    else:
        first = rng.randint(1, planted_total // 3 + 1)
        second = rng.randint(1, (planted_total - first) // 2 + 1)
        run_sizes = [first, second, planted_total - first - second]
    planted = [value for size in run_sizes for value in sorted(rng.sample(range(1, max_value + 1), size))]
    sequence = rng.choices(range(1, max_value + 1), k=length)
    for position, value in zip(sorted(rng.sample(range(length), planted_total)), planted, strict=True):
        sequence[position] = value
    best = longest_increasing_ending_at(sequence)
    return " ".join(map(str, sequence)), " ".join(map(str, best)), str(max(best))


def longest_increasing_ending_at(sequence: list[int]) -> list[int]:
    """The DP table: length of the longest strictly increasing subsequence that ends at each position."""
    best: list[int] = []
    for i, value in enumerate(sequence):
        longest_before = 0
        for j in range(i):  # plain loops: several times faster than max() over a generator here
            if sequence[j] < value and best[j] > longest_before:
                longest_before = best[j]
        best.append(longest_before + 1)
    return best


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--length", type=int, default=DEFAULT_LENGTH, help=f"sequence length n (default {DEFAULT_LENGTH})"
    )
    parser.add_argument(
        "--max-value",
        type=int,
        default=DEFAULT_MAX_VALUE,
        help=f"values are 1..max-value (default {DEFAULT_MAX_VALUE})",
    )
    add_split_arguments(parser, DEFAULT_SIZES)


def _card(options: Options) -> dict[str, object]:
    length, max_value = options["length"], options["max_value"]
    return dict(
        task="longest-increasing-subsequence",
        summary=(
            f"Longest increasing subsequence of integer sequences of length {length} with values "
            f"1..{max_value}, after Feng et al. (2023)'s benchmark as used by Seq-VCR (Arefin et al., 2025). "
            "Each sequence is uniform except for one to three strictly increasing runs (3 to "
            f"{length} numbers in all) planted at random positions, so answers spread over the whole "
            "range. The question is the sequence, the chain of thought the dynamic-programming table (length "
            "of the longest strictly increasing subsequence ending at each position), the answer its maximum; "
            "all space-separated integers. Questions are distinct in and across splits (Python "
            "`random.Random` with the seed below)."
        ),
        parameters={"length": length, "max_value": max_value},
        license="apache-2.0",
        license_note="synthetic data generated by hf-seqvcr's Apache-2.0 code after Feng et al.'s generator.",
        citations=["feng2023towards"],
    )


TASK = BuilderTask(
    name="lis",
    description="Build longest-increasing-subsequence data (Feng et al. 2023) with the DP table as chain of thought.",
    add_arguments=_add_arguments,
    config_name=lambda options: f"lis-n{options['length']}",
    config_name_help="lis-n<length>, e.g. lis-n16",
    check=check_options,
    build=build,
    card=_card,
)


def main(argv: list[str] | None = None) -> int:
    return cli.main(TASK, argv)


if __name__ == "__main__":
    raise SystemExit(main())
