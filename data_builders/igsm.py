"""i-GSM: symbolic grade-school problems modulo a small number (Saunshi et al., 2025, App. A.3.3, after Ye et al.).

An entity hierarchy has 4 levels of ``--entities-per-level`` entities, one capital letter each (A-D, E-H, I-L,
M-P for 4). The structure graph is a random set of edges between consecutive levels; each edge ``X#Y`` (X one
level above Y, read "the number of Y in each X") is an instance parameter, named as in the paper's Table 2
example (``E#I``, ``I#N``: every first letter there is one level above its second). The dependency DAG defines
each parameter as a constant or as a signed sum of earlier parameters, sometimes times a coefficient. The
question lists every equation in random order, then asks for one parameter; the answer is its value modulo
``--modulus`` (7 as in the paper; Ye et al. use 23):

    question: E#I := 4. F#K := 2 * (E#I - J#N). J#N := E#I. H#L := J#N + E#I. F#K?
    cot:      E#I = 4. => E#I = 4. J#N = E#I. => J#N = 4. F#K = 2*(E#I-J#N). => F#K = 0.
    answer:   0                                         (H#L is a distractor)

A coefficient always multiplies the whole sum, written with brackets: the paper's ``I#N := 2 * J#P + H#J + E#I``
is ambiguous, and its chain of thought (``2J#P+2H#J+2E#I``) shows the bracketed reading was meant.

The query needs exactly ``--needed`` parameters (itself included; every one is an ancestor of the query) and
``--distractors`` more equations are never needed: they may use any earlier parameter, but no needed one uses
them. The chain of thought restates each needed equation and its value (``=>`` standing for the paper's ⟹), in
the paper's order: repeatedly the first equation of the question whose operands are all known. On the paper's
own example this order reproduces its chain of thought step for step.
"""

from __future__ import annotations

import argparse
import itertools
import random
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache, partial
from math import perm

from datasets import DatasetDict

from . import cli
from .cli import BuilderTask, Options, add_split_arguments, require_int
from .distinct import Example, draw_distinct
from .splits import SplitSizes, split_in_order

LEVELS = 4
DEFAULT_NEEDED = 6
DEFAULT_DISTRACTORS = 3
DEFAULT_MAX_OPERANDS = 3
DEFAULT_ENTITIES_PER_LEVEL = 4
DEFAULT_MODULUS = 7
DEFAULT_SIZES = SplitSizes(train=1_000_000, validation=1_000, test=10_000)
# Shape of the equations, not given by the paper; its example (9 needed, 3 distractors) has a single constant
# (the first parameter must be one), one minus sign and one coefficient among 12 equations.
CONSTANT_SHARE = 0.25  # chance that a parameter free to be a constant is one
MINUS_SHARE = 0.2  # chance that a term after the first is subtracted
COEFFICIENT_SHARE = 0.2  # chance that a sum is multiplied by a coefficient in 2..modulus-1


@dataclass(frozen=True)
class Equation:
    """``name := constant``, or ``name := coefficient * (term ± term ...)`` with ``terms`` as (sign, parameter)."""

    name: str
    constant: int | None = None
    terms: tuple[tuple[str, str], ...] = ()
    coefficient: int = 1

    @property
    def operands(self) -> list[str]:
        return [operand for _, operand in self.terms]

    def expression(self, space: str) -> str:
        """The right-hand side, with ``space`` around operators (" " in questions, "" in the chain of thought)."""
        if self.constant is not None:
            return str(self.constant)
        (_, first), *rest = self.terms
        body = first + "".join(f"{space}{sign}{space}{operand}" for sign, operand in rest)
        if self.coefficient == 1:
            return body
        return f"{self.coefficient}{space}*{space}" + (f"({body})" if rest else body)

    def evaluate(self, values: Mapping[str, int], modulus: int) -> int:
        if self.constant is not None:
            return self.constant
        total = sum(values[operand] if sign == "+" else -values[operand] for sign, operand in self.terms)
        return self.coefficient * total % modulus


@cache  # every draw samples from it
def parameter_names(entities_per_level: int) -> tuple[str, ...]:
    """Every edge ``X#Y`` from an entity X of one level to an entity Y of the next."""
    letters = string.ascii_uppercase
    levels = [letters[level * entities_per_level : (level + 1) * entities_per_level] for level in range(LEVELS)]
    return tuple(
        f"{upper}#{lower}" for above, below in itertools.pairwise(levels) for upper in above for lower in below
    )


def question_count_bound(
    *, needed: int, distractors: int, max_operands: int, entities_per_level: int, modulus: int
) -> int:
    """Upper bound on distinct questions: ordered names × query × right-hand sides, each a constant or a
    coefficient times up to ``max_operands`` signed names."""
    total = needed + distractors
    right_hand_sides = modulus * (1 + 2 * (2 * total) ** max_operands)
    return perm(len(parameter_names(entities_per_level)), total) * total * right_hand_sides**total


def check_options(
    *,
    needed: int,
    distractors: int,
    max_operands: int,
    entities_per_level: int,
    modulus: int,
    cot: bool,
    train_size: int,
    validation_size: int,
    test_size: int,
) -> None:
    """A ValueError naming the bad option; cheap, so it runs before any drawing. ``cot`` only decides whether the
    cot column is filled, so every value of it passes."""
    sizes = SplitSizes(train=train_size, validation=validation_size, test=test_size)
    require_int("needed", needed, minimum=1, example=DEFAULT_NEEDED)
    require_int("distractors", distractors, minimum=0, example=DEFAULT_DISTRACTORS)
    require_int("max_operands", max_operands, minimum=1, example=DEFAULT_MAX_OPERANDS)
    most_entities = len(string.ascii_uppercase) // LEVELS
    require_int("entities_per_level", entities_per_level, minimum=1, maximum=most_entities, example=4)
    require_int("modulus", modulus, minimum=2, example=DEFAULT_MODULUS)
    names = len(parameter_names(entities_per_level))
    if needed + distractors > names:
        raise ValueError(
            f"needed + distractors = {needed + distractors} exceeds the {names} parameters (edges) of a hierarchy "
            f"with {entities_per_level} entities per level; lower --needed / --distractors or raise "
            "--entities-per-level"
        )
    bound = question_count_bound(
        needed=needed,
        distractors=distractors,
        max_operands=max_operands,
        entities_per_level=entities_per_level,
        modulus=modulus,
    )
    sizes.check_capacity(bound, "problems of this size", "lower --train-size or raise --needed / --distractors")


def build(
    *,
    needed: int = DEFAULT_NEEDED,
    distractors: int = DEFAULT_DISTRACTORS,
    max_operands: int = DEFAULT_MAX_OPERANDS,
    entities_per_level: int = DEFAULT_ENTITIES_PER_LEVEL,
    modulus: int = DEFAULT_MODULUS,
    cot: bool = True,
    train_size: int = DEFAULT_SIZES.train,
    validation_size: int = DEFAULT_SIZES.validation,
    test_size: int = DEFAULT_SIZES.test,
    seed: int,
) -> DatasetDict:
    """Train/validation/test problems with distinct questions, drawn with ``seed``; ``cot=False`` leaves it empty."""
    options = dict(
        needed=needed,
        distractors=distractors,
        max_operands=max_operands,
        entities_per_level=entities_per_level,
        modulus=modulus,
    )
    check_options(**options, cot=cot, train_size=train_size, validation_size=validation_size, test_size=test_size)
    sizes = SplitSizes(train=train_size, validation=validation_size, test=test_size)
    return split_in_order(draw_distinct(partial(draw_problem, **options, cot=cot), sizes.total, seed), sizes)


def draw_problem(
    rng: random.Random,
    *,
    needed: int,
    distractors: int,
    max_operands: int,
    entities_per_level: int,
    modulus: int,
    cot: bool,
) -> Example:
    """One (question, cot, answer): draw parameters and equations, shuffle them, ask for the last needed one."""
    names = rng.sample(parameter_names(entities_per_level), needed + distractors)
    equations = _needed_equations(rng, names[:needed], max_operands, modulus)
    for name in names[needed:]:
        equations.append(_equation(rng, name, [equation.name for equation in equations], max_operands, modulus))
    query = names[needed - 1]
    rng.shuffle(equations)
    question, chain, answer = format_problem(equations, query, modulus)
    return question, chain if cot else "", answer


def _needed_equations(rng: random.Random, names: Sequence[str], max_operands: int, modulus: int) -> list[Equation]:
    """Equations in dependency order in which every parameter is an ancestor of the last one, the query.

    ``unused`` holds parameters no later one uses yet: each sum takes at least one of them and the query takes
    all that are left, so a constant (which adds to ``unused`` without taking any) is only allowed while fewer
    than ``max_operands`` are waiting.
    """
    equations: list[Equation] = []
    unused: list[str] = []
    for index, name in enumerate(names):
        is_query = index == len(names) - 1
        if not unused or (not is_query and len(unused) < max_operands and rng.random() < CONSTANT_SHARE):
            equations.append(Equation(name, constant=rng.randrange(modulus)))
        else:
            fresh = unused if is_query else rng.sample(unused, rng.randint(1, min(len(unused), max_operands)))
            used = [earlier for earlier in names[:index] if earlier not in unused]
            operands = fresh + rng.sample(used, rng.randint(0, min(len(used), max_operands - len(fresh))))
            rng.shuffle(operands)
            unused = [earlier for earlier in unused if earlier not in fresh]
            equations.append(_sum(rng, name, operands, modulus))
        unused.append(name)
    return equations


def _equation(rng: random.Random, name: str, earlier: Sequence[str], max_operands: int, modulus: int) -> Equation:
    """A distractor: a constant, or a sum of up to ``max_operands`` earlier parameters of any kind."""
    if rng.random() < CONSTANT_SHARE:
        return Equation(name, constant=rng.randrange(modulus))
    return _sum(rng, name, rng.sample(earlier, rng.randint(1, min(len(earlier), max_operands))), modulus)


def _sum(rng: random.Random, name: str, operands: Sequence[str], modulus: int) -> Equation:
    signs = ["+"] + ["-" if rng.random() < MINUS_SHARE else "+" for _ in operands[1:]]
    coefficient = rng.randint(2, modulus - 1) if modulus > 2 and rng.random() < COEFFICIENT_SHARE else 1
    return Equation(name, terms=tuple(zip(signs, operands, strict=True)), coefficient=coefficient)


def solution(equations: Sequence[Equation], query: str, modulus: int) -> list[tuple[Equation, int]]:
    """The equations ``query`` needs with their values, in the paper's order: repeatedly the first equation (in
    question order) whose operands are all known."""
    by_name = {equation.name: equation for equation in equations}
    needed: set[str] = set()
    stack = [query]
    while stack:
        name = stack.pop()
        if name not in needed:
            needed.add(name)
            stack += by_name[name].operands
    pending = [equation for equation in equations if equation.name in needed]
    values: dict[str, int] = {}
    steps = []
    while pending:
        ready = next(equation for equation in pending if all(operand in values for operand in equation.operands))
        values[ready.name] = ready.evaluate(values, modulus)
        steps.append((ready, values[ready.name]))
        pending.remove(ready)
    return steps


def format_problem(equations: Sequence[Equation], query: str, modulus: int) -> Example:
    """(question, cot, answer) of equations given in question order, in the style of the paper's Table 2."""
    question = " ".join(f"{equation.name} := {equation.expression(' ')}." for equation in equations)
    steps = solution(equations, query, modulus)
    chain = " ".join(
        f"{equation.name} = {equation.expression('')}. => {equation.name} = {value}." for equation, value in steps
    )
    return f"{question} {query}?", chain, str(steps[-1][1])


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--needed",
        type=int,
        default=DEFAULT_NEEDED,
        help=f"parameters the query depends on, the query included (default {DEFAULT_NEEDED}; the paper's "
        "example has 9)",
    )
    parser.add_argument(
        "--distractors",
        type=int,
        default=DEFAULT_DISTRACTORS,
        help=f"further equations the query does not need (default {DEFAULT_DISTRACTORS}, as in the paper's example)",
    )
    parser.add_argument(
        "--max-operands",
        type=int,
        default=DEFAULT_MAX_OPERANDS,
        help=f"most parameters in one sum (default {DEFAULT_MAX_OPERANDS}, as in the paper's example)",
    )
    parser.add_argument(
        "--entities-per-level",
        type=int,
        default=DEFAULT_ENTITIES_PER_LEVEL,
        help=f"entities on each of the {LEVELS} levels; parameters are edges between consecutive levels "
        f"(default {DEFAULT_ENTITIES_PER_LEVEL}: letters A-P, 48 possible parameters)",
    )
    parser.add_argument(
        "--modulus", type=int, default=DEFAULT_MODULUS, help=f"answers are modulo this (default {DEFAULT_MODULUS})"
    )
    parser.add_argument(
        "--cot",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="fill the cot column with the step-by-step solution (default on; the recipe decides whether to "
        "train on it)",
    )
    add_split_arguments(parser, DEFAULT_SIZES)


def _config_name(options: Options) -> str:
    return f"igsm-q{options['needed']}-d{options['distractors']}-ops{options['max_operands']}-mod{options['modulus']}"


def _card(options: Options) -> dict[str, object]:
    needed, distractors, max_operands = options["needed"], options["distractors"], options["max_operands"]
    entities_per_level, modulus, cot = options["entities_per_level"], options["modulus"], options["cot"]
    return dict(
        task="i-gsm",
        summary=(
            "Symbolic grade-school math problems modulo "
            f"{modulus}, the i-GSM task of Saunshi et al. (2025, App. A.3.3) simplified from Ye et al. (2024). "
            f"Parameters are edges `X#Y` between consecutive levels of a {LEVELS}-level entity hierarchy with "
            f"{entities_per_level} entities (capital letters) per level. The question lists, in random order, "
            f"one equation per parameter (`X#Y := 4.` or `X#Y := A#E + 2 * (B#F - C#G).`-style signed sums of at "
            f"most {max_operands} earlier parameters, a coefficient always multiplying the bracketed sum), "
            f"then asks for one parameter (`X#Y?`). The query depends on exactly {needed} parameters "
            f"(itself included); {distractors} more equations are distractors it does not need. The answer "
            f"is the query's value modulo {modulus}. "
            + (
                "The chain of thought restates each needed equation and its value (`X#Y = A#E+B#F. => X#Y = 3.`), "
                "repeatedly taking the first equation of the question whose operands are known, as in the "
                "paper's example. "
                if cot
                else "The chain of thought is empty. "
            )
            + "Questions are distinct in and across splits (Python `random.Random` with the seed below)."
        ),
        parameters={
            "needed": needed,
            "distractors": distractors,
            "max_operands": max_operands,
            "entities_per_level": entities_per_level,
            "modulus": modulus,
            "cot": cot,
        },
        license="apache-2.0",
        license_note="synthetic data generated by hf-seqvcr's Apache-2.0 code after Saunshi et al.'s description.",
        citations=["saunshi2025reasoning", "ye2024physics"],
    )


TASK = BuilderTask(
    name="igsm",
    description="Build i-GSM symbolic problems modulo a small number (Saunshi et al. 2025 after Ye et al. 2024) "
    "with a step-by-step chain of thought.",
    add_arguments=_add_arguments,
    config_name=_config_name,
    config_name_help="igsm-q<needed>-d<distractors>-ops<max-operands>-mod<modulus>, e.g. igsm-q6-d3-ops3-mod7",
    check=check_options,
    build=build,
    card=_card,
)


def main(argv: list[str] | None = None) -> int:
    return cli.main(TASK, argv)


if __name__ == "__main__":
    raise SystemExit(main())
