"""Counting against length (Barbero et al. 2024, §3.2, Figs. 3-4): how many items of a sequence are the counted one.

Each of ``length`` items is the counted one with probability ``--probability``; the answer is how many are. The
paper's four tasks are three styles and two probabilities:

- sum of ones, ``sum:1+1+1`` (``--style sum --probability 1``);
- count the ones of an all-ones string, ``count ones:111`` (``--style digits --probability 1``);
- count the ones of a Bernoulli(0.7) 0/1 string, ``count ones:1101`` (``--style digits``, the default);
- count ``car`` in a sentence, ``count car:car dog car`` (``--style words``; the other words are short fillers).

Probability 1 leaves one question per length, too few to train on, hence the default 0.7 (the paper's only
stated probability). Questions use a short prefix instead of the paper's English prompt for the reasons given in
`data_builders.copying`; the length counts items (digits, terms or words), not tokens.

    question: count ones:1101101     cot:      answer: 5
"""

from __future__ import annotations

import argparse
import random
from functools import partial

from datasets import DatasetDict

from hf_seqvcr.separators import join_items

from . import cli
from .cli import BuilderTask, Options, add_split_arguments
from .distinct import Example
from .length_buckets import (
    add_length_arguments,
    build_by_length,
    check_lengths,
    check_separator_every,
    length_parameters,
)
from .splits import SplitSizes

STYLES = ("digits", "sum", "words")
PREFIXES = {"digits": "count ones:", "sum": "sum:", "words": "count car:"}
JOINERS = {"digits": "", "sum": "+", "words": " "}
WORD = "car"
FILLERS = ("bus", "cat", "dog", "hat", "map", "pen", "sun", "toy")  # three letters like "car", none inside another
DEFAULT_PROBABILITY = 0.7
DEFAULT_MIN_LENGTH, DEFAULT_MAX_LENGTH = 1, 64
DEFAULT_TEST_LENGTHS = (8, 16, 32, 64, 128)
DEFAULT_BUCKET_SIZE = 100
DEFAULT_SIZES = SplitSizes(train=100_000, validation=1_000, test=1_000)


def question_count(length: int, style: str, probability: float) -> int:
    """Distinct questions of one length: one when every item is counted, else every choice per item."""
    if probability == 1:
        return 1
    return (1 + len(FILLERS)) ** length if style == "words" else 2**length


def check_options(
    *,
    style: str,
    probability: float,
    separator_every: int,
    min_length: int,
    max_length: int,
    test_lengths: tuple[int, ...],
    bucket_size: int,
    train_size: int,
    validation_size: int,
    test_size: int,
) -> None:
    """A ValueError naming the bad option; cheap, so it runs before any drawing."""
    sizes = SplitSizes(train=train_size, validation=validation_size, test=test_size)
    if style not in STYLES:
        raise ValueError(f"style={style!r} must be one of {STYLES}; pass --style digits, sum or words")
    if isinstance(probability, bool) or not isinstance(probability, (int, float)) or not 0 < probability <= 1:
        raise ValueError(
            f"probability={probability!r} must be in (0, 1] (the chance each item is counted); pass e.g. "
            "--probability 0.7, or 1 for all ones"
        )
    check_separator_every(separator_every)
    if style == "sum" and separator_every:
        raise ValueError(
            "separator_every applies to digit strings and sentences; a sum already has `+` between its terms: "
            "drop --separator-every or pass --style digits"
        )
    check_lengths(
        min_length=min_length,
        max_length=max_length,
        test_lengths=test_lengths,
        bucket_size=bucket_size,
        sizes=sizes,
        capacity=partial(question_count, style=style, probability=probability),
        what=f"{style} questions with probability {probability}",
        fix="pass --probability below 1" if probability == 1 else "raise --max-length",
    )


def build(
    *,
    style: str = "digits",
    probability: float = DEFAULT_PROBABILITY,
    separator_every: int = 0,
    min_length: int = DEFAULT_MIN_LENGTH,
    max_length: int = DEFAULT_MAX_LENGTH,
    test_lengths: tuple[int, ...] = DEFAULT_TEST_LENGTHS,
    bucket_size: int = DEFAULT_BUCKET_SIZE,
    train_size: int = DEFAULT_SIZES.train,
    validation_size: int = DEFAULT_SIZES.validation,
    test_size: int = DEFAULT_SIZES.test,
    seed: int,
) -> DatasetDict:
    """Train/validation/test over min..max length and one ``test_len<L>`` split per test length, distinct
    questions throughout, drawn with ``seed``."""
    options = dict(style=style, probability=probability, separator_every=separator_every)
    check_options(
        **options,
        min_length=min_length,
        max_length=max_length,
        test_lengths=test_lengths,
        bucket_size=bucket_size,
        train_size=train_size,
        validation_size=validation_size,
        test_size=test_size,
    )
    sizes = SplitSizes(train=train_size, validation=validation_size, test=test_size)
    return build_by_length(
        partial(draw_count, **options),
        min_length=min_length,
        max_length=max_length,
        test_lengths=test_lengths,
        bucket_size=bucket_size,
        sizes=sizes,
        seed=seed,
    )


def draw_count(rng: random.Random, length: int, *, style: str, probability: float, separator_every: int) -> Example:
    """One (question, "", answer): ``length`` items, each counted with ``probability``; the answer is the count."""
    counted = [rng.random() < probability for _ in range(length)]
    if style == "words":
        items = [WORD if hit else rng.choice(FILLERS) for hit in counted]
    else:
        items = ["1" if hit else "0" for hit in counted]
    return PREFIXES[style] + join_items(items, JOINERS[style], separator_every), "", str(sum(counted))


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--style",
        choices=STYLES,
        default="digits",
        help="0/1 string (default), a sum `1+0+1`, or words with `car` counted",
    )
    parser.add_argument(
        "--probability",
        type=float,
        default=DEFAULT_PROBABILITY,
        help=f"chance each item is a 1 / `car` (default {DEFAULT_PROBABILITY}, the paper's; 1: the all-ones tasks)",
    )
    parser.add_argument(
        "--separator-every", type=int, default=0, help="a comma after every k-th item (default 0: none; paper: 3)"
    )
    add_length_arguments(
        parser,
        min_length=DEFAULT_MIN_LENGTH,
        max_length=DEFAULT_MAX_LENGTH,
        test_lengths=DEFAULT_TEST_LENGTHS,
        bucket_size=DEFAULT_BUCKET_SIZE,
    )
    add_split_arguments(parser, DEFAULT_SIZES)


def _config_name(options: Options) -> str:
    separator = f"-sep{options['separator_every']}" if options["separator_every"] else ""
    lengths = f"-len{options['min_length']}-{options['max_length']}"
    return f"count-{options['style']}-p{options['probability']:g}{separator}{lengths}"


def _card(options: Options) -> dict[str, object]:
    style, probability, separator_every = options["style"], options["probability"], options["separator_every"]
    items = {"digits": "0/1 digits (counting the ones)", "sum": "terms of a sum of 0s and 1s", "words": "words"}
    return dict(
        task="counting",
        summary=(
            f"Counting (Barbero et al., 2024, §3.2): the question is `{PREFIXES[style]}` followed by a "
            f"sequence of {items[style]}, each of which is "
            + (f"`{WORD}`" if style == "words" else "1")
            + f" with probability {probability:g}"
            + (f" and otherwise one of {', '.join(FILLERS)}" if style == "words" else "")
            + "; the answer is how many are. "
            + (f"A comma follows every {separator_every}-th item. " if separator_every else "")
            + f"`train`, `validation` and `test` have lengths (items) uniform in {options['min_length']}.."
            f"{options['max_length']}; each `test_len<L>` split holds sequences of L items only, for accuracy "
            "against length. Questions are distinct in and across splits (Python `random.Random` with the seed "
            "below), so a length with few questions that has a test_len split is absent from training."
        ),
        parameters=length_parameters(options, "style", "probability", "separator_every"),
        license="apache-2.0",
        license_note="synthetic data generated by hf-seqvcr's Apache-2.0 code.",
        citations=["barbero2024transformers"],
    )


TASK = BuilderTask(
    name="counting",
    description="Build counting data (Barbero et al. 2024: sum of ones, ones in a 0/1 string, a word in a "
    "sentence) with test splits per length.",
    add_arguments=_add_arguments,
    config_name=_config_name,
    config_name_help="count-<style>-p<probability>[-sep<k>]-len<min>-<max>, e.g. count-digits-p0.7-len1-64",
    check=check_options,
    build=build,
    card=_card,
)


def main(argv: list[str] | None = None) -> int:
    return cli.main(TASK, argv)


if __name__ == "__main__":
    raise SystemExit(main())
