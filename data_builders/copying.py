"""Copy the first or the last token of a binary sequence, against its length (Barbero et al. 2024, §3.1, Fig. 2).

The paper asks for the last digit of ``1…10`` or the first of ``01…1`` (variant a), with a hint (b), or with
interleaved 0s and 1s (c). Its answer is always 0 because it probes a pretrained model; a model trained from scratch
would learn to print 0 without reading anything, so here the copied token is 0 or 1 at random, the rest being ones
(``--content ones``: the paper's ``1…10`` and the control ``1…11``, one question each per length) or random bits
(``--content interleaved``, the default because it has enough distinct questions to train on). The paper's
failure mode, answering 1 to ``1…10``, shows as wrong answers on the rows whose answer is 0.

Questions are compact: a short prefix instead of the paper's English prompt (App. C.1). A character-level model
trained from scratch reads one token per character, so the ~150 tokens of the paper's prompt would be constant
input that costs time and, being part of the softmax, shifts the very length at which collapse occurs; the
prefix only tells a model trained on several configs which end to copy. The hint follows the sequence, as the
paper's question text does.

    question: last:1101001     cot:      answer: 1
    question: first:011,111,11 hint: not always 1    (--content ones --separator-every 3 --hint)   answer: 0
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

POSITIONS = ("first", "last")
CONTENTS = ("interleaved", "ones")
HINT = " hint: not always 1"
DEFAULT_MIN_LENGTH, DEFAULT_MAX_LENGTH = 1, 64
DEFAULT_TEST_LENGTHS = (8, 16, 32, 64, 128)
DEFAULT_BUCKET_SIZE = 100
DEFAULT_SIZES = SplitSizes(train=100_000, validation=1_000, test=1_000)


def question_count(length: int, content: str) -> int:
    """Distinct questions of one length: the copied bit alone for all-ones content, every bit otherwise."""
    return 2 if content == "ones" else 2**length


def check_options(
    *,
    position: str,
    content: str,
    hint: bool,
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
    if position not in POSITIONS:
        raise ValueError(f"position={position!r} must be one of {POSITIONS}; pass --position first or last")
    if content not in CONTENTS:
        raise ValueError(f"content={content!r} must be one of {CONTENTS}; pass --content interleaved or ones")
    if not isinstance(hint, bool):
        raise ValueError(f"hint={hint!r} must be True or False; pass --hint to add it")
    check_separator_every(separator_every)
    check_lengths(
        min_length=min_length,
        max_length=max_length,
        test_lengths=test_lengths,
        bucket_size=bucket_size,
        sizes=sizes,
        capacity=partial(question_count, content=content),
        what=f"{content} sequences",
        fix="raise --max-length" if content == "interleaved" else "use --content interleaved",
    )


def build(
    *,
    position: str = "last",
    content: str = "interleaved",
    hint: bool = False,
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
    options = dict(position=position, content=content, hint=hint, separator_every=separator_every)
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
        partial(draw_copy, **options),
        min_length=min_length,
        max_length=max_length,
        test_lengths=test_lengths,
        bucket_size=bucket_size,
        sizes=sizes,
        seed=seed,
    )


def draw_copy(
    rng: random.Random, length: int, *, position: str, content: str, hint: bool, separator_every: int
) -> Example:
    """One (question, "", answer): ``length`` bits with a random bit at the copied end."""
    bits = ["1"] * length if content == "ones" else [rng.choice("01") for _ in range(length)]
    end = 0 if position == "first" else -1
    bits[end] = rng.choice("01")
    question = f"{position}:{join_items(bits, '', separator_every)}{HINT if hint else ''}"
    return question, "", bits[end]


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--position", choices=POSITIONS, default="last", help="which end to copy (default last)")
    parser.add_argument(
        "--content",
        choices=CONTENTS,
        default="interleaved",
        help="the other tokens: random bits (default) or all ones (the paper's 1…10 / 01…1, 2 questions per length)",
    )
    parser.add_argument(
        "--hint",
        action=argparse.BooleanOptionalAction,
        default=False,
        help=f"append the hint {HINT.strip()!r} (paper Fig. 2b)",
    )
    parser.add_argument(
        "--separator-every", type=int, default=0, help="a comma after every k-th bit (default 0: none; paper: 3)"
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
    hint = "-hint" if options["hint"] else ""
    separator = f"-sep{options['separator_every']}" if options["separator_every"] else ""
    lengths = f"-len{options['min_length']}-{options['max_length']}"
    return f"copy-{options['position']}-{options['content']}{hint}{separator}{lengths}"


def _card(options: Options) -> dict[str, object]:
    position, separator_every = options["position"], options["separator_every"]
    min_length, max_length = options["min_length"], options["max_length"]
    content = "all ones" if options["content"] == "ones" else "random bits"
    return dict(
        task="copying",
        summary=(
            f"Copy the {position} token of a binary sequence (Barbero et al., 2024, §3.1): the question is "
            f"`{position}:` followed by the sequence, whose other tokens are {content} and whose "
            f"{position} token is 0 or 1 at random; the answer is that token. "
            + (f"A comma follows every {separator_every}-th bit. " if separator_every else "")
            + (f"The hint `{HINT.strip()}` follows the sequence. " if options["hint"] else "")
            + f"`train`, `validation` and `test` have lengths uniform in {min_length}..{max_length}; "
            "each `test_len<L>` split holds sequences of length L only, for accuracy against length. Questions "
            "are distinct in and across splits (Python `random.Random` with the seed below), so a length with "
            "few questions that has a test_len split is absent from training."
        ),
        parameters=length_parameters(options, "position", "content", "hint", "separator_every"),
        license="apache-2.0",
        license_note="synthetic data generated by hf-seqvcr's Apache-2.0 code.",
        citations=["barbero2024transformers"],
    )


TASK = BuilderTask(
    name="copying",
    description="Build first/last-token copying data (Barbero et al. 2024) with test splits per length.",
    add_arguments=_add_arguments,
    config_name=_config_name,
    config_name_help="copy-<position>-<content>[-hint][-sep<k>]-len<min>-<max>, e.g. copy-last-ones-len1-64",
    check=check_options,
    build=build,
    card=_card,
)


def main(argv: list[str] | None = None) -> int:
    return cli.main(TASK, argv)


if __name__ == "__main__":
    raise SystemExit(main())
