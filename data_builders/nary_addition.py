"""n-ary addition of 3-digit numbers (Saunshi et al., 2025, App. A.3.1), scored per n like the paper.

Each operand is uniform in [0, 999] and written zero-padded to 3 digits; the answer is the unpadded sum; there
is no chain of thought. Training rows draw n uniformly from ``--train-n`` (the paper's {2, 4, 8, 16, 32}).

    question: 315 + 120 + 045 + 824     cot: (empty)     answer: 1304

The paper's question ends in ``=``; ours does not, because the collator already puts ``<eos>`` between question
and answer, so the ``=`` would be one more token per row that says nothing. ``--reverse-digits`` writes every
number least-significant digit first (``513 + 021 + 540 + 428`` -> ``4031``), the convention of the
multiplication task that lets a small model emit the carry in reading order; the default is the paper's format.

Per-n evaluation is a set of extra splits ``test_n<k>``, one per ``--eval-n`` value k, ``--eval-n-size`` rows
each, next to the usual train/validation/test (those three follow the training mixture). Extra splits rather than
a config per n, because all of them are scored against one training run and so belong to one config (one
``load_dataset(dir, config)``, one card, and the recipe picks one with ``--test_split test_n24``); rather than
an ``n`` column, because the shared schema is exactly three string columns. Every split is disjoint from the
others, including ``test_n8`` from train although 8 is also a training n.
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Sequence
from functools import partial

from datasets import DatasetDict

from . import cli
from .cli import BuilderTask, Options, add_split_arguments, require_int
from .distinct import Example, draw_distinct
from .splits import SplitSizes, split_in_order

DEFAULT_TRAIN_N = (2, 4, 8, 16, 32)
DEFAULT_EVAL_N = (8, 16, 24, 32)
DEFAULT_EVAL_N_SIZE = 1_000
DEFAULT_SIZES = SplitSizes(train=1_000_000, validation=1_000, test=1_000)
DIGITS = 3
NUMBERS = 10**DIGITS  # operands are 0..999


def eval_split(n: int) -> str:
    """The name of the split that scores sums of ``n`` numbers."""
    return f"test_n{n}"


def check_options(
    *,
    train_n: Sequence[int],
    eval_n: Sequence[int],
    eval_n_size: int,
    reverse_digits: bool,
    train_size: int,
    validation_size: int,
    test_size: int,
) -> None:
    """A ValueError naming the bad option; cheap, so it runs before any drawing. ``reverse_digits`` only sets
    how rows are written, so every value of it passes."""
    sizes = SplitSizes(train=train_size, validation=validation_size, test=test_size)
    for name, values in (("train_n", train_n), ("eval_n", eval_n)):
        flag = f"--{name.replace('_', '-')}"
        if not isinstance(values, (list, tuple)) or not values:
            raise ValueError(f"{name}={values!r} must be a non-empty list of operand counts; pass e.g. {flag} 2 4 8")
        for value in values:
            require_int(name, value, minimum=2, example=8)
        if len(set(values)) != len(values):
            raise ValueError(f"{name}={list(values)} repeats a value; list each n once after {flag}")
    require_int("eval_n_size", eval_n_size, minimum=1, example=DEFAULT_EVAL_N_SIZE)
    for n in eval_n:
        if eval_n_size > NUMBERS**n:
            raise ValueError(
                f"eval_n_size={eval_n_size:,} exceeds the {NUMBERS**n:,} distinct sums of {n} numbers; lower "
                "--eval-n-size or raise the --eval-n values"
            )
    held_out = sum(eval_n_size for n in eval_n if n in train_n)
    sizes.check_capacity(
        sum(NUMBERS**n for n in train_n) - held_out,
        f"sums of {list(train_n)} numbers left after the --eval-n splits",
        "lower --train-size or raise the --train-n values",
    )


def build(
    *,
    train_n: Sequence[int] = DEFAULT_TRAIN_N,
    eval_n: Sequence[int] = DEFAULT_EVAL_N,
    eval_n_size: int = DEFAULT_EVAL_N_SIZE,
    reverse_digits: bool = False,
    train_size: int = DEFAULT_SIZES.train,
    validation_size: int = DEFAULT_SIZES.validation,
    test_size: int = DEFAULT_SIZES.test,
    seed: int,
) -> DatasetDict:
    """train/validation/test from the ``train_n`` mixture plus one ``test_n<k>`` split per ``eval_n`` value.

    The per-n splits are drawn first, each from its own stream (so they depend only on seed, n and
    ``eval_n_size``), and the mixture then excludes their questions.
    """
    check_options(
        train_n=train_n,
        eval_n=eval_n,
        eval_n_size=eval_n_size,
        reverse_digits=reverse_digits,
        train_size=train_size,
        validation_size=validation_size,
        test_size=test_size,
    )
    sizes = SplitSizes(train=train_size, validation=validation_size, test=test_size)
    per_n = {
        eval_split(n): draw_distinct(
            partial(draw_sum, ns=(n,), reverse_digits=reverse_digits), eval_n_size, f"{seed}:{eval_split(n)}"
        )
        for n in eval_n
    }
    held_out = {question for split in per_n.values() for question in split["question"]}
    draw = partial(draw_sum, ns=tuple(train_n), reverse_digits=reverse_digits)
    mixture = split_in_order(draw_distinct(draw, sizes.total, seed, exclude=held_out), sizes)
    return DatasetDict({**mixture, **per_n})


def draw_sum(rng: random.Random, *, ns: Sequence[int], reverse_digits: bool) -> Example:
    """One (question, "", answer): n drawn uniformly from ``ns``, then n operands uniform in [0, 999]."""
    operands = [rng.randrange(NUMBERS) for _ in range(rng.choice(ns))]
    numbers = [f"{operand:0{DIGITS}d}" for operand in operands]
    answer = str(sum(operands))
    if reverse_digits:
        numbers, answer = [number[::-1] for number in numbers], answer[::-1]
    return " + ".join(numbers), "", answer


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--train-n",
        type=int,
        nargs="+",
        default=list(DEFAULT_TRAIN_N),
        help=f"training rows add n numbers, n uniform over these (default {' '.join(map(str, DEFAULT_TRAIN_N))})",
    )
    parser.add_argument(
        "--eval-n",
        type=int,
        nargs="+",
        default=list(DEFAULT_EVAL_N),
        help="one extra split test_n<k> per value k, which need not be a training n "
        f"(default {' '.join(map(str, DEFAULT_EVAL_N))})",
    )
    parser.add_argument(
        "--eval-n-size",
        type=int,
        default=DEFAULT_EVAL_N_SIZE,
        help=f"rows of each test_n<k> split (default {DEFAULT_EVAL_N_SIZE:,})",
    )
    parser.add_argument(
        "--reverse-digits",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="write every number least-significant digit first (default: off, the paper's format)",
    )
    add_split_arguments(parser, DEFAULT_SIZES)


def _config_name(options: Options) -> str:
    return f"nary-n{'-'.join(map(str, options['train_n']))}{'-rev' if options['reverse_digits'] else ''}"


def _card(options: Options) -> dict[str, object]:
    train_n, eval_n, eval_n_size = options["train_n"], options["eval_n"], options["eval_n_size"]
    order = "least-significant digit first" if options["reverse_digits"] else "most-significant digit first"
    return dict(
        task="nary-addition",
        summary=(
            "Addition of n numbers of 3 digits, after Saunshi et al. (2025, App. A.3.1). Operands are uniform "
            f"in [0, 999], written zero-padded to 3 digits and joined by ` + ` ({order}); the answer is the "
            "unpadded sum, in the same digit order; there is no chain of thought. Unlike the paper the question "
            "does not end in `=`: the collator separates question and answer with `<eos>`. Training, validation "
            f"and test rows draw n uniformly from {train_n}; each extra split `test_n<k>` holds "
            f"{eval_n_size:,} rows with n = k, for k in {eval_n}, so accuracy is scored per n "
            "(choose one with the recipe's `--test_split`). Questions are distinct in and across all splits "
            "(Python `random.Random` with the seed below)."
        ),
        parameters={
            "train_n": train_n,
            "eval_n": eval_n,
            "eval_n_size": eval_n_size,
            "reverse_digits": options["reverse_digits"],
        },
        license="apache-2.0",
        license_note="synthetic data generated by hf-seqvcr's Apache-2.0 code after Saunshi et al.'s description.",
        citations=["saunshi2025reasoning"],
    )


TASK = BuilderTask(
    name="nary_addition",
    description="Build n-ary addition of 3-digit numbers (Saunshi et al. 2025) with one test split per n.",
    add_arguments=_add_arguments,
    config_name=_config_name,
    config_name_help="nary-n<--train-n values joined by -><-rev with --reverse-digits>, e.g. nary-n2-4-8-16-32",
    check=check_options,
    build=build,
    card=_card,
)


def main(argv: list[str] | None = None) -> int:
    return cli.main(TASK, argv)


if __name__ == "__main__":
    raise SystemExit(main())
