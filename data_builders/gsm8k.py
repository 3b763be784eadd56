"""GSM8K in the shared row schema, from Deng et al.'s implicit-CoT files or from OpenAI's original jsonl.

* ``--variant aug``: Deng et al.'s ``question||cot #### answer`` lines (equation-only CoT such as
  ``<<4-2=2>> <<2/.5=4>>`` in valid/test; the ~385k-line augmented ``train.txt`` lives in Git LFS, so the
  default train file is ``train_no_aug.txt``, the original train set minus the 500 validation questions).
  Splits are the files' own.
* ``--variant original``: ``{"question", "answer"}`` records whose answer ends with ``#### <final answer>``;
  the CoT is the rationale before it, calculator annotations included. Validation is carved from train by seed.

Answers are normalised for exact-match scoring: commas dropped (``1,600`` -> ``1600``), signs kept.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
from datasets import DatasetDict

from hf_seqvcr.schema import ANSWER_MARKER

from . import cli
from .cli import BuilderTask, Options
from .distinct import Example
from .schema import SPLITS, from_line, make_split

VARIANTS = ("aug", "original")
DEFAULT_INPUT_DIRS = {"aug": Path("../shared/data/implicit_cot/gsm8k"), "original": Path("../shared/data/gsm8k")}
DEFAULT_CONFIG_NAMES = {"aug": "gsm8k-aug", "original": "gsm8k"}
DENG_FILES = {"train": "train_no_aug.txt", "validation": "valid.txt", "test": "test.txt"}
ORIGINAL_FILES = {"train": "train.jsonl", "test": "test.jsonl"}
DEFAULT_VALIDATION_SIZE = 500  # as many as Deng et al. held out of the original train set
DENG_LICENSE_NOTE = " Deng et al.'s files come from github da03/implicit_chain_of_thought, which has no LICENSE file."


def strip_thousands_separators(answer: str) -> str:
    """``1,600`` -> ``1600``, spaces around trimmed: the answer column holds the number as scoring compares it
    (scoring's own `hf_seqvcr.evaluation.normalize_answer` then only drops whitespace)."""
    return answer.strip().replace(",", "")


def parse_deng_line(line: str) -> Example:
    """(question, cot, answer) of ``question||cot #### answer``, the answer normalised."""
    row = from_line(line)
    return row["question"], row["cot"], strip_thousands_separators(row["answer"])


def parse_original_record(record: dict) -> Example:
    """(question, cot, answer) of an original GSM8K record: the answer text is ``rationale\\n#### final``."""
    if (
        not isinstance(record, dict)
        or not isinstance(record.get("question"), str)
        or not isinstance(record.get("answer"), str)
    ):
        raise ValueError('a record must be {"question": str, "answer": str}')
    rationale, marker, answer = record["answer"].rpartition(f"{ANSWER_MARKER} ")
    if not marker:
        raise ValueError(f"answer {record['answer'][-80:]!r} has no '{ANSWER_MARKER} <final answer>'")
    return record["question"], rationale.rstrip("\n"), strip_thousands_separators(answer)


def check_options(
    *, variant: str, input_dir: str | Path | None, train_file: str | None = None, validation_size: int | None = None
) -> dict[str, Path]:
    """The source file of each split, or an error naming the bad option and the fix; cheap, so it runs first."""
    if variant not in VARIANTS:
        raise ValueError(f"variant={variant!r} is unknown; pass --variant aug or --variant original")
    if variant == "aug" and validation_size is not None:
        raise ValueError("validation_size only applies to --variant original (Deng's files have their own); drop it")
    if variant == "original" and train_file is not None:
        raise ValueError("train_file only applies to --variant aug; drop --train-file")
    if validation_size is not None and (
        isinstance(validation_size, bool) or not isinstance(validation_size, int) or validation_size < 1
    ):
        raise ValueError(f"validation_size={validation_size!r} must be a positive integer; pass --validation-size >= 1")
    input_dir = DEFAULT_INPUT_DIRS[variant] if input_dir is None else Path(input_dir)
    names = dict(DENG_FILES, train=train_file or DENG_FILES["train"]) if variant == "aug" else ORIGINAL_FILES
    files = {split: input_dir / name for split, name in names.items()}
    missing = [str(path) for path in files.values() if not path.is_file()]
    if missing:
        raise FileNotFoundError(
            f"--input-dir {str(input_dir)!r} lacks {missing}; pass the folder holding {sorted(names.values())} "
            f"(default for --variant {variant}: {DEFAULT_INPUT_DIRS[variant]})"
        )
    return files


def build(
    *,
    variant: str = "aug",
    input_dir: str | Path | None = None,
    train_file: str | None = None,
    validation_size: int | None = None,
    seed: int = 0,
) -> DatasetDict:
    """GSM8K train/validation/test; ``seed`` only matters for carving the original variant's validation split."""
    files = check_options(variant=variant, input_dir=input_dir, train_file=train_file, validation_size=validation_size)
    if variant == "aug":
        splits = {split: _read(path, parse_deng_line) for split, path in files.items()}
    else:
        read = {
            split: _read(path, lambda line: parse_original_record(json.loads(line))) for split, path in files.items()
        }
        splits = _carve_validation(read["train"], read["test"], validation_size or DEFAULT_VALIDATION_SIZE, seed)
    empty = [str(files.get(split, files["train"])) for split, rows in splits.items() if not rows]
    if empty:
        raise ValueError(f"{empty} hold no examples; pass an --input-dir with non-empty files")
    _check_disjoint(splits)
    return DatasetDict({split: make_split(*zip(*splits[split], strict=True)) for split in SPLITS})


def _read(path: Path, parse: Callable[[str], Example]) -> list[Example]:
    """Examples of the non-empty lines, split on '\\n' only (a GSM8K question contains U+2028, which
    str.splitlines would cut); a bad line is reported with its file and line number."""
    examples = []
    for number, line in enumerate(path.read_bytes().decode("utf-8").split("\n"), start=1):
        if line:
            try:
                examples.append(parse(line))
            except (ValueError, KeyError, TypeError) as error:
                raise ValueError(f"{path}:{number}: {error}; fix that line or pass another --input-dir") from error
    return examples


def _carve_validation(train: list[Example], test: list[Example], size: int, seed: int) -> dict[str, list[Example]]:
    """A seeded random subset of train becomes validation; both keep the file's order."""
    if size >= len(train):
        raise ValueError(
            f"validation_size={size} leaves no train rows of {len(train)}; pass --validation-size < {len(train)}"
        )
    held = np.zeros(len(train), bool)
    held[np.random.default_rng(seed).permutation(len(train))[:size]] = True
    return {
        "train": [row for row, is_held in zip(train, held, strict=True) if not is_held],
        "validation": [row for row, is_held in zip(train, held, strict=True) if is_held],
        "test": test,
    }


def _check_disjoint(splits: dict[str, list[Example]]) -> None:
    questions = {split: {row[0] for row in rows} for split, rows in splits.items()}
    for i, first in enumerate(SPLITS):
        for second in SPLITS[i + 1 :]:
            shared = questions[first] & questions[second]
            if shared:
                raise ValueError(
                    f"{len(shared)} question(s) appear in both {first} and {second} "
                    f"(e.g. {next(iter(shared))[:60]!r}); the input files overlap: remove the repeats from the "
                    "train file"
                )


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--variant", choices=VARIANTS, default="aug", help="aug: Deng et al.'s files; original: OpenAI's jsonl"
    )
    parser.add_argument(
        "--input-dir",
        type=Path,
        help=f"folder with the source files (default {DEFAULT_INPUT_DIRS['aug']} or {DEFAULT_INPUT_DIRS['original']})",
    )
    parser.add_argument(
        "--train-file",
        help=f"aug only: train file name in --input-dir (default {DENG_FILES['train']}; Deng's augmented train.txt "
        "if you have it)",
    )
    parser.add_argument(
        "--validation-size",
        type=int,
        help=f"original only: train questions held out as validation (default {DEFAULT_VALIDATION_SIZE})",
    )


def _resolve(options: Options) -> Options:
    """The defaults that depend on --variant, spelled out for the card's rebuild command."""
    variant = options["variant"]
    validation_size = options["validation_size"]
    if variant == "original" and validation_size is None:
        validation_size = DEFAULT_VALIDATION_SIZE
    input_dir = options["input_dir"] or str(DEFAULT_INPUT_DIRS[variant])
    return {**options, "input_dir": input_dir, "validation_size": validation_size}


def _card(options: Options) -> dict[str, object]:
    aug = options["variant"] == "aug"
    if aug:
        summary = (
            "GSM8K grade-school math word problems (Cobbe et al., 2021) in the implicit-CoT format of Deng et al. "
            "(2023), as used by Seq-VCR (Arefin et al., 2025). The question is the problem text, the chain of "
            "thought the calculator equations `<<expr=value>>` separated by spaces (Deng's augmented train.txt "
            "and valid/test) or a plain-text rationale (train_no_aug.txt, the original train set minus the 500 "
            "validation questions); the answer is the final number with thousands separators removed. Splits are "
            "the files' own."
        )
    else:
        summary = (
            "GSM8K grade-school math word problems (Cobbe et al., 2021), original release. The question is the "
            "problem text, the chain of thought the rationale before `#### ` (calculator annotations `<<expr=value>>` "
            "and newlines kept), the answer the final number with thousands separators removed. Validation is a "
            f"random subset of {options['validation_size']} train questions (NumPy PCG64 with the seed below); test "
            "is the original test set."
        )
    return dict(
        task="gsm8k",
        summary=summary,
        parameters={key: value for key, value in options.items() if value is not None},
        license="mit",
        license_note="GSM8K is released under the MIT license, Copyright (c) 2021 OpenAI "
        "(github openai/grade-school-math)." + (DENG_LICENSE_NOTE if aug else ""),
        citations=["cobbe2021gsm8k", *(["deng2023implicit"] if aug else [])],
    )


TASK = BuilderTask(
    name="gsm8k",
    description="Convert GSM8K (Deng et al.'s implicit-CoT files or OpenAI's original jsonl) to the shared "
    "question/cot/answer schema.",
    add_arguments=_add_arguments,
    config_name=lambda options: DEFAULT_CONFIG_NAMES[options["variant"]],
    config_name_help=" or ".join(DEFAULT_CONFIG_NAMES.values()),
    check=check_options,
    build=build,
    card=_card,
    resolve=_resolve,
)


def main(argv: list[str] | None = None) -> int:
    return cli.main(TASK, argv)


if __name__ == "__main__":
    raise SystemExit(main())
