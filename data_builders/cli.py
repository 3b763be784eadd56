"""The command line every builder shares: a task declares what is its own, `main` does the rest.

A task module declares one `BuilderTask` and keeps a one-line ``main``; the generic `main` parses the task's
flags and the common ones (seed, output, Hub upload), checks everything cheap before any work, builds, writes
the Hub-style directory with its card, and pushes if asked. Declaring a task::

    def _add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--length", type=int, default=DEFAULT_LENGTH, help="...")
        add_split_arguments(parser, DEFAULT_SIZES)


    TASK = BuilderTask(
        name="copying",                          # the module data_builders.copying
        description="Build copying data ...",
        add_arguments=_add_arguments,
        config_name=lambda options: f"copy-n{options['length']}",
        config_name_help="copy-n<length>, e.g. copy-n16",
        check=check_options,                     # check_options(**options): ValueError naming flag and fix
        build=build,                             # build(**options, seed=seed) -> DatasetDict
        card=lambda options: dict(task=..., summary=..., parameters=..., license=..., license_note=...,
                                  citations=[...]),
    )


    def main(argv: list[str] | None = None) -> int:
        return cli.main(TASK, argv)

``options`` are the values of the task's own flags, keyed by argparse dest, in flag order (paths as strings);
the card's rebuild command spells out every one that is not None, so no task flag may be ``required``.
``check_options`` and ``build`` take the flags' dests as keyword arguments (``build`` also ``seed``); choices
and defaults come from the module's constants. Two optional hooks cover the rest: ``resolve`` fills in defaults
that depend on other flags, so the rebuild command spells them out (gsm8k's validation size); ``inputs`` turns
options into the arguments of ``check`` and ``build`` when a flag names files to read (multiplication's
``--heldout-dir`` becomes ``heldout`` pairs).
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datasets import DatasetDict

from .card import dataset_card
from .dataset_dir import check_output_dir, write_dataset_dir
from .splits import SplitSizes

Options = dict[str, Any]


@dataclass(frozen=True)
class BuilderTask:
    """Everything task-specific about a builder's command line; see the module docstring for an example."""

    name: str
    description: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    config_name: Callable[[Options], str]
    config_name_help: str
    check: Callable[..., object]
    build: Callable[..., DatasetDict]
    card: Callable[[Options], Mapping[str, object]]
    resolve: Callable[[Options], Options] | None = None
    inputs: Callable[[Options], Options] | None = None

    @property
    def module(self) -> str:
        return f"data_builders.{self.name}"


def add_split_arguments(parser: argparse.ArgumentParser, defaults: SplitSizes, *, fixed_by: str | None = None) -> None:
    """Split-size flags of generated tasks; with ``fixed_by`` (an option naming files that supply the validation
    and test rows) those two default to None so the builder can tell "not given" from "given"."""
    parser.add_argument(
        "--train-size", type=int, default=defaults.train, help=f"training rows (default {defaults.train:,})"
    )
    for split in ("validation", "test"):
        default = getattr(defaults, split)
        note = f"; with {fixed_by}, the size of its {split} file" if fixed_by else ""
        parser.add_argument(
            f"--{split}-size",
            type=int,
            default=None if fixed_by else default,
            help=f"{split} rows (default {default:,}{note})",
        )


def _add_common_arguments(parser: argparse.ArgumentParser, *, default_config_name: str) -> None:
    """Seed, output and Hub flags, identical for every builder."""
    parser.add_argument(
        "--seed", type=int, default=0, help="random seed; the same seed and sizes give byte-identical files"
    )
    parser.add_argument("--output-dir", type=Path, required=True, help="local directory to write (Hub repo layout)")
    parser.add_argument(
        "--config-name", default=None, help=f"dataset config (a folder of --output-dir); default {default_config_name}"
    )
    hub = parser.add_argument_group("Hugging Face Hub")
    hub.add_argument("--push-to-hub", metavar="REPO_ID", help="also upload the dataset to this Hub dataset repo")
    hub.add_argument("--private", action="store_true", help="create the Hub repo as private")
    hub.add_argument("--revision", metavar="BRANCH", help="push to this branch instead of main")


def rebuild_command(module: str, options: Mapping[str, object]) -> str:
    """The shell command that rebuilds a config, every option spelled out so later default changes do not matter.

    A boolean is a ``BooleanOptionalAction`` flag (``--x`` / ``--no-x``); a tuple or list is an ``nargs`` flag.
    """
    words = ["python", "-m", module]
    for name, value in options.items():
        flag = name.replace("_", "-")
        if isinstance(value, bool):  # a BooleanOptionalAction flag
            words.append(f"--{flag}" if value else f"--no-{flag}")
        elif isinstance(value, (list, tuple)):  # an nargs="+" flag
            words += [f"--{flag}", *map(str, value)]
        elif value is not None:
            words += [f"--{flag}", str(value)]
    return shlex.join(words)


def require_int(name: str, value: object, *, minimum: int, example: int, maximum: int | None = None) -> None:
    """A ValueError naming the flag of option ``name`` unless ``value`` is an integer in [minimum, maximum]."""
    too_big = maximum is not None and isinstance(value, int) and value > maximum
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum or too_big:
        bounds = f">= {minimum}" if maximum is None else f"in {minimum}..{maximum}"
        raise ValueError(
            f"{name}={value!r} must be an integer {bounds}; pass e.g. --{name.replace('_', '-')} {example}"
        )


def add_spelling_aliases(parser: argparse.ArgumentParser) -> None:
    """Every ``--multi-word`` flag of ``parser`` also answers to ``--multi_word``, and back: the training scripts'
    HfArgumentParser takes both, so one spelling (the README's underscores) works with every command."""
    for action in parser._actions:  # argparse has no public way to add an option string to an existing action
        for option in list(action.option_strings):
            if not option.startswith("--"):
                continue
            name = option[2:]
            for alias in (f"--{name.replace('-', '_')}", f"--{name.replace('_', '-')}"):
                if alias not in parser._option_string_actions:
                    action.option_strings.append(alias)
                    parser._option_string_actions[alias] = action


def main(task: BuilderTask, argv: list[str] | None = None) -> int:
    """Parse, check everything cheap first (repo id, options, output dir), then build, write, and push if asked."""
    own = argparse.ArgumentParser(add_help=False)
    task.add_arguments(own)
    parser = argparse.ArgumentParser(prog=f"python -m {task.module}", description=task.description, parents=[own])
    _add_common_arguments(parser, default_config_name=task.config_name_help)
    add_spelling_aliases(parser)
    args = parser.parse_args(argv)
    options = {dest: _plain(getattr(args, dest)) for dest in vars(own.parse_args([]))}
    if task.resolve is not None:
        options = task.resolve(options)
    config_name = args.config_name or task.config_name(options)
    if (args.private or args.revision) and not args.push_to_hub:
        parser.error("--private and --revision only apply to an upload; add --push-to-hub REPO_ID or drop them")
    try:
        if args.push_to_hub:
            from hf_seqvcr.hub import validate_repo_id  # lazy: building data never needs the Hub client

            validate_repo_id(args.push_to_hub)
        inputs = options if task.inputs is None else task.inputs(options)
        task.check(**inputs)
        check_output_dir(args.output_dir, config_name)
    except (ValueError, FileNotFoundError) as error:
        parser.error(str(error))
    dataset = task.build(**inputs, seed=args.seed)
    command = rebuild_command(
        task.module, {**options, "seed": args.seed, "config_name": config_name, "output_dir": args.output_dir}
    )
    card_text = dataset_card(
        **task.card(options),
        config_name=config_name,
        example=dataset["train"][0],
        seed=args.seed,
        split_sizes={split: len(rows) for split, rows in dataset.items()},
        command=command,
    )
    output_dir = write_dataset_dir(dataset, args.output_dir, config_name=config_name, card=card_text)
    sizes = ", ".join(f"{split} {len(rows):,}" for split, rows in dataset.items())
    print(f"wrote config {config_name!r} ({sizes}) to {output_dir}")
    if args.push_to_hub:
        from hf_seqvcr.hub import HubPublishError

        from .publish import push_dataset

        try:
            commit = push_dataset(
                dataset,
                args.push_to_hub,
                config_name=config_name,
                card=card_text,
                private=args.private,
                revision=args.revision,
                local_path=output_dir,
            )
        except HubPublishError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        branch = f" (branch {args.revision})" if args.revision else ""
        print(f"pushed config {config_name!r} to {commit.repo_url}{branch}")
    return 0


def _plain(value: object) -> object:
    """Paths as strings, so options can go into the card's YAML as they are."""
    return os.fspath(value) if isinstance(value, os.PathLike) else value
