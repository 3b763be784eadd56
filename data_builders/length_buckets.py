"""Tasks with a length axis: train on lengths ``--min-length``..``--max-length``, test per length in splits
``test_len<L>`` (accuracy against length, as in Barbero et al. 2024, Figs. 2-4).

Why splits and not a column or configs: the row schema is fixed (``question``, ``cot``, ``answer``), so a length
column would break every consumer of it, and one config per length would repeat the training rows in each.
Named splits keep one config per task: ``load_dataset(dir, config)`` and ``data_builders.load_task_dataset``
return ``train``, ``validation``, ``test`` (lengths drawn like train) and one ``test_len<L>`` per test length;
a recipe scores one with ``--test_split test_len64``; `bucket_splits` reads the lengths back from the names.

All splits share no question. Buckets are drawn first, so when a length has few distinct questions (all-ones
content has one or two per length) a bucket inside the training range takes them and training never sees that
length: the bucket then measures interpolation to an unseen length. A request larger than the distinct
questions that exist fails before drawing, with the numbers (repeating an identical row adds nothing: greedy
decoding answers it identically, and training can take more epochs instead).
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

from datasets import DatasetDict

from .distinct import Example, draw_distinct
from .splits import SplitSizes, split_in_order

BUCKET_PREFIX = "test_len"
DrawAtLength = Callable[[random.Random, int], Example]
"""(rng, length) -> (question, cot, answer) for one example whose sequence has ``length`` items."""
Split = TypeVar("Split")


def bucket_split(length: int) -> str:
    """The split that holds the test questions of one length, e.g. ``test_len64``."""
    return f"{BUCKET_PREFIX}{length}"


def bucket_splits(dataset: Mapping[str, Split]) -> dict[int, Split]:
    """``{length: split}`` for every ``test_len<L>`` split of ``dataset``, by increasing length."""
    found = {
        int(name[len(BUCKET_PREFIX) :]): split
        for name, split in dataset.items()
        if name.startswith(BUCKET_PREFIX) and name[len(BUCKET_PREFIX) :].isdigit()
    }
    if not found:
        raise ValueError(
            f"the dataset has no {BUCKET_PREFIX}<L> splits (splits: {list(dataset)}); build it with "
            "data_builders.copying or data_builders.counting and --test-lengths"
        )
    return dict(sorted(found.items()))


def add_length_arguments(
    parser: argparse.ArgumentParser, *, min_length: int, max_length: int, test_lengths: Sequence[int], bucket_size: int
) -> None:
    """The length flags every length-axis task shares, with that task's defaults."""
    parser.add_argument(
        "--min-length",
        type=int,
        default=min_length,
        help=f"shortest train/validation/test sequence (default {min_length})",
    )
    parser.add_argument(
        "--max-length",
        type=int,
        default=max_length,
        help=f"longest train/validation/test sequence (default {max_length})",
    )
    parser.add_argument(
        "--test-lengths",
        type=int,
        nargs="*",
        default=tuple(test_lengths),
        help="lengths, one test_len<L> split each, inside or beyond the training range "
        f"(default {' '.join(map(str, test_lengths))}; the flag alone for none)",
    )
    parser.add_argument(
        "--bucket-size", type=int, default=bucket_size, help=f"rows per test_len<L> split (default {bucket_size})"
    )


def length_parameters(options: Mapping[str, object], *names: str) -> dict[str, object]:
    """The card's parameters of a length-axis task: its own options ``names``, then the length flags."""
    return {
        **{name: options[name] for name in names},
        "min_length": options["min_length"],
        "max_length": options["max_length"],
        "test_lengths": list(options["test_lengths"]),
        "bucket_size": options["bucket_size"],
    }


def check_lengths(
    *,
    min_length: int,
    max_length: int,
    test_lengths: Sequence[int],
    bucket_size: int,
    sizes: SplitSizes,
    capacity: Callable[[int], int],
    what: str,
    fix: str,
) -> None:
    """A ValueError naming the bad flag, before any drawing; ``capacity(n)`` counts the distinct questions of
    length n, ``what`` names them and ``fix`` says how the task can offer more."""
    for name, value, least in (("min_length", min_length, 1), ("max_length", max_length, min_length)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ValueError(
                f"{name}={value!r} must be an integer >= {least}; pass --{name.replace('_', '-')} >= {least}"
            )
    if any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in test_lengths):
        raise ValueError(
            f"test_lengths={tuple(test_lengths)!r} must be integers >= 1; pass e.g. --test-lengths 8 16 32"
        )
    if len(set(test_lengths)) != len(test_lengths):
        raise ValueError(f"test_lengths={tuple(test_lengths)!r} repeats a length; list each once in --test-lengths")
    if isinstance(bucket_size, bool) or not isinstance(bucket_size, int) or bucket_size < 1:
        raise ValueError(f"bucket_size={bucket_size!r} must be an integer >= 1; pass --bucket-size >= 1")
    for length in test_lengths:
        if capacity(length) < bucket_size:
            raise ValueError(
                f"bucket_size={bucket_size} exceeds the {capacity(length):,} distinct {what} of length {length}; "
                f"pass --bucket-size {capacity(length)} or less, or {fix}"
            )
    held_out = bucket_size * sum(min_length <= length <= max_length for length in test_lengths)
    sizes.check_capacity(
        sum(capacity(n) for n in range(min_length, max_length + 1)) - held_out,
        f"{what} of lengths {min_length}..{max_length} left after the test_len<L> buckets",
        f"lower --train-size, {fix}",
    )


def check_separator_every(separator_every: int) -> None:
    if isinstance(separator_every, bool) or not isinstance(separator_every, int) or separator_every < 0:
        raise ValueError(
            f"separator_every={separator_every!r} must be an integer >= 0 (0: no separators); "
            "pass e.g. --separator-every 3"
        )


def build_by_length(
    draw: DrawAtLength,
    *,
    min_length: int,
    max_length: int,
    test_lengths: Sequence[int],
    bucket_size: int,
    sizes: SplitSizes,
    seed: int,
) -> DatasetDict:
    """``train``/``validation``/``test`` with lengths uniform in min..max, then one ``test_len<L>`` split per
    test length, all with distinct questions; buckets are drawn first (held-out rows first, as `split_in_order`).

    Each split draws from its own seed, taken in turn from one generator seeded with ``seed``.
    """
    seeds = random.Random(seed)
    used: set[str] = set()
    buckets = {}
    for length in sorted(test_lengths):
        bucket = draw_distinct(
            lambda rng, length=length: draw(rng, length), bucket_size, seeds.getrandbits(64), exclude=used
        )
        used.update(bucket["question"])
        buckets[bucket_split(length)] = bucket
    rows = draw_distinct(
        lambda rng: draw(rng, rng.randint(min_length, max_length)), sizes.total, seeds.getrandbits(64), exclude=used
    )
    return DatasetDict({**split_in_order(rows, sizes), **buckets})
