"""Arithmetic expressions modulo a prime with a step-by-step chain of thought (Feng et al., 2023), as Seq-VCR uses them.

Generated the way Feng et al.'s generator does it, backwards from the answer: start from one random number and,
``--num-operators`` times, replace a random number ``x`` of the expression by a random ``l op r`` whose value
is ``x`` (bracketed only where precedence needs it). Read in reverse, the expressions are the chain of thought:
each step evaluates exactly one operation. Arithmetic is in the field of integers modulo the prime ``--modulus``;
division is multiplication by the modular inverse and never divides by zero.

    question: ( 7 - 2 ) * 3 / 4     cot: 5 * 3 / 4 = 4 / 4     answer: 1          (modulo 11)
"""

from __future__ import annotations

import argparse
import random
from functools import partial
from math import comb

from datasets import DatasetDict

from . import cli
from .cli import BuilderTask, Options, add_split_arguments
from .distinct import Example, draw_distinct
from .splits import SplitSizes, split_in_order

DEFAULT_NUM_OPERATORS = 4
DEFAULT_MODULUS = 11
DEFAULT_SIZES = SplitSizes(train=1_000_000, validation=1_000, test=100_000)
OPERATORS = "+-*/"


def expression_count(num_operators: int, modulus: int) -> int:
    """Upper bound on distinct expressions: binary tree shapes × operator choices × numbers at the leaves."""
    catalan = comb(2 * num_operators, num_operators) // (num_operators + 1)
    return catalan * len(OPERATORS) ** num_operators * modulus ** (num_operators + 1)


def check_options(*, num_operators: int, modulus: int, train_size: int, validation_size: int, test_size: int) -> None:
    """A ValueError naming the bad option; cheap, so it runs before any drawing."""
    sizes = SplitSizes(train=train_size, validation=validation_size, test=test_size)
    if isinstance(num_operators, bool) or not isinstance(num_operators, int) or num_operators < 1:
        raise ValueError(f"num_operators={num_operators!r} must be an integer >= 1; pass e.g. --num-operators 4")
    if isinstance(modulus, bool) or not isinstance(modulus, int) or not _is_prime(modulus):
        raise ValueError(
            f"modulus={modulus!r} must be a prime (division needs every non-zero number to have an inverse); "
            "pass e.g. --modulus 11"
        )
    sizes.check_capacity(
        expression_count(num_operators, modulus),
        f"expressions with {num_operators} operators modulo {modulus}",
        "lower --train-size or raise --num-operators / --modulus",
    )


def build(
    *,
    num_operators: int = DEFAULT_NUM_OPERATORS,
    modulus: int = DEFAULT_MODULUS,
    train_size: int = DEFAULT_SIZES.train,
    validation_size: int = DEFAULT_SIZES.validation,
    test_size: int = DEFAULT_SIZES.test,
    seed: int,
) -> DatasetDict:
    """Train/validation/test expressions with distinct questions, drawn with ``seed``."""
    check_options(
        num_operators=num_operators,
        modulus=modulus,
        train_size=train_size,
        validation_size=validation_size,
        test_size=test_size,
    )
    sizes = SplitSizes(train=train_size, validation=validation_size, test=test_size)
    draw = partial(draw_expression, num_operators=num_operators, modulus=modulus)
    return split_in_order(draw_distinct(draw, sizes.total, seed), sizes)


def draw_expression(rng: random.Random, *, num_operators: int, modulus: int) -> Example:
    """One (question, cot, answer); the cot holds the intermediate expressions joined by `` = ``."""
    tokens = [str(rng.randrange(modulus))]
    history = [tokens]
    for _ in range(num_operators):
        tokens = _expand(tokens, rng, modulus)
        history.append(tokens)
    steps = [" ".join(step) for step in reversed(history)]
    return steps[0], " = ".join(steps[1:-1]), steps[-1]


def _expand(tokens: list[str], rng: random.Random, modulus: int) -> list[str]:
    """Replace a random number by an operation with the same value, bracketed where precedence requires it."""
    index = rng.choice([i for i, token in enumerate(tokens) if token.isdigit()])
    left, operator, right = _operation_with_value(int(tokens[index]), rng, modulus)
    before = tokens[index - 1] if index > 0 else ""
    after = tokens[index + 1] if index + 1 < len(tokens) else ""
    low_precedence = operator in "+-"
    bracket = before == "/" or (low_precedence and (before in ("*", "-") or after in ("*", "/")))
    operation = [str(left), operator, str(right)]
    return tokens[:index] + (["(", *operation, ")"] if bracket else operation) + tokens[index + 1 :]


def _operation_with_value(value: int, rng: random.Random, modulus: int) -> tuple[int, str, int]:
    """A random ``left op right`` equal to ``value``: draw left and op, solve for right, redraw when impossible."""
    while True:
        left, operator = rng.randrange(modulus), rng.choice(OPERATORS)
        if operator == "+":
            return left, operator, (value - left) % modulus
        if operator == "-":
            return left, operator, (left - value) % modulus
        if operator == "*":
            if left:
                return left, operator, value * pow(left, -1, modulus) % modulus
            if value == 0:
                return left, operator, rng.randrange(modulus)
        elif value and left:  # left / right == value
            return left, operator, left * pow(value, -1, modulus) % modulus
        elif value == 0 and left == 0:
            return left, operator, rng.randrange(1, modulus)


def _is_prime(number: int) -> bool:
    return number >= 2 and all(number % divisor for divisor in range(2, int(number**0.5) + 1))


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--num-operators",
        type=int,
        default=DEFAULT_NUM_OPERATORS,
        help=f"operators per expression (default {DEFAULT_NUM_OPERATORS}; Seq-VCR compares 4 to 6)",
    )
    parser.add_argument("--modulus", type=int, default=DEFAULT_MODULUS, help=f"prime p (default {DEFAULT_MODULUS})")
    add_split_arguments(parser, DEFAULT_SIZES)


def _card(options: Options) -> dict[str, object]:
    num_operators, modulus = options["num_operators"], options["modulus"]
    return dict(
        task="arithmetic-expressions",
        summary=(
            f"Arithmetic expressions with {num_operators} operators (`+ - * /`, with parentheses) over the "
            f"integers modulo {modulus}, generated like Feng et al. (2023)'s benchmark as used by Seq-VCR "
            "(Arefin et al., 2025): starting from the answer, a random number is repeatedly replaced by an "
            "operation with the same value, bracketed only where precedence requires it. The question is the "
            "final expression (tokens separated by spaces); the chain of thought is the sequence of expressions "
            "obtained by evaluating one operation at a time, joined by ` = `; the answer is the value. Division "
            "is multiplication by the modular inverse. Questions are distinct in and across splits (Python "
            "`random.Random` with the seed below)."
        ),
        parameters={"num_operators": num_operators, "modulus": modulus},
        license="apache-2.0",
        license_note="synthetic data generated by hf-seqvcr's Apache-2.0 code after Feng et al.'s generator.",
        citations=["feng2023towards"],
    )


TASK = BuilderTask(
    name="arithmetic",
    description="Build arithmetic-expression data modulo a prime (Feng et al. 2023) with a one-operation-per-step "
    "chain of thought.",
    add_arguments=_add_arguments,
    config_name=lambda options: f"ops{options['num_operators']}-mod{options['modulus']}",
    config_name_help="ops<num-operators>-mod<modulus>, e.g. ops4-mod11",
    check=check_options,
    build=build,
    card=_card,
)


def main(argv: list[str] | None = None) -> int:
    return cli.main(TASK, argv)


if __name__ == "__main__":
    raise SystemExit(main())
