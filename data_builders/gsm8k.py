"""GSM8K in the shared row schema, from OpenAI's original release or from Deng et al.'s implicit-CoT files.

* ``--variant original`` (default): ``{"question", "answer"}`` records whose answer ends with
  ``#### <final answer>``; the CoT is the rationale before it, calculator annotations included. Validation is
  carved from train by seed. Read from the copy shipped in ``gsm8k_data/`` (MIT, see its PROVENANCE.md), so
  the recipes run offline from a bare checkout or a wheel; or from ``--input-dir`` (``train.jsonl`` and
  ``test.jsonl``); or from a Hub dataset laid out like ``openai/gsm8k`` (``--hub-id``, config ``main``).
* ``--variant aug``: Deng et al.'s ``question||cot #### answer`` lines (equation-only CoT such as
  ``<<4-2=2>> <<2/.5=4>>`` in valid/test; the ~385k-line augmented ``train.txt`` lives in Git LFS, so the
  default train file is ``train_no_aug.txt``, the original train set minus the 500 validation questions).
  Splits are the files' own. Their repository has no license, so they are never shipped: ``--input-dir``.

Answers are normalised for exact-match scoring: commas dropped (``1,600`` -> ``1600``), signs kept.
"""

from __future__ import annotations

import argparse
import gzip
import json
from collections.abc import Callable
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

import numpy as np
from datasets import DatasetDict, load_dataset
from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id

from hf_seqvcr.schema import ANSWER_MARKER

from . import cli
from .cli import BuilderTask, Options
from .distinct import Example
from .splits import SPLITS, from_line, make_split

VARIANTS = ("aug", "original")
DEFAULT_VARIANT = "original"
DEFAULT_CONFIG_NAMES = {"aug": "gsm8k-aug", "original": "gsm8k"}
DENG_FILES = {"train": "train_no_aug.txt", "validation": "valid.txt", "test": "test.txt"}
ORIGINAL_FILES = {"train": "train.jsonl", "test": "test.jsonl"}
SHIPPED_DIR = files(__package__) / "gsm8k_data"
SHIPPED_FILES = {split: f"{name}.gz" for split, name in ORIGINAL_FILES.items()}
HUB_CONFIG = "main"  # openai/gsm8k's config of the original release ("socratic" is the other)
HUB_COLUMNS = ("question", "answer")  # openai/gsm8k's columns, the keys of an original record
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
    *,
    variant: str = DEFAULT_VARIANT,
    input_dir: str | Path | None = None,
    hub_id: str | None = None,
    train_file: str | None = None,
    validation_size: int | None = None,
) -> dict[str, Traversable] | None:
    """The source file of each split (None when reading ``hub_id``), or an error naming the bad option and the
    fix; cheap, so it runs first."""
    if variant not in VARIANTS:
        raise ValueError(f"variant={variant!r} is unknown; pass {' or '.join(f'--variant {v}' for v in VARIANTS)}")
    if variant == "aug" and validation_size is not None:
        raise ValueError("validation_size only applies to --variant original (Deng's files have their own); drop it")
    if variant == "aug" and hub_id is not None:
        raise ValueError("hub_id only applies to --variant original (the Hub copy is OpenAI's release); drop --hub-id")
    if variant == "aug" and input_dir is None:
        raise ValueError(
            "--variant aug reads Deng et al.'s files, which have no license and so are not shipped; pass "
            f"--input-dir DIR holding {sorted(DENG_FILES.values())} (github da03/implicit_chain_of_thought, "
            "data/gsm8k), or drop --variant aug for the original GSM8K shipped with the package"
        )
    if variant == "original" and train_file is not None:
        raise ValueError("train_file only applies to --variant aug; drop --train-file")
    if input_dir is not None and hub_id is not None:
        raise ValueError("--input-dir and --hub-id name two sources; drop one")
    if validation_size is not None and (
        isinstance(validation_size, bool) or not isinstance(validation_size, int) or validation_size < 1
    ):
        raise ValueError(f"validation_size={validation_size!r} must be a positive integer; pass --validation-size >= 1")
    if hub_id is not None:
        try:
            validate_repo_id(hub_id)
        except HFValidationError as error:
            raise ValueError(
                f"hub_id={hub_id!r} is no Hub dataset id ({error}); pass e.g. --hub-id openai/gsm8k"
            ) from error
        return None
    if input_dir is None:
        sources = {split: SHIPPED_DIR / name for split, name in SHIPPED_FILES.items()}
        if not all(path.is_file() for path in sources.values()):
            raise FileNotFoundError(
                f"the GSM8K copy shipped in {SHIPPED_DIR} is incomplete; reinstall hf-seqvcr, or pass --input-dir "
                "or --hub-id openai/gsm8k"
            )
        return sources
    names = dict(DENG_FILES, train=train_file or DENG_FILES["train"]) if variant == "aug" else ORIGINAL_FILES
    sources = {split: Path(input_dir) / name for split, name in names.items()}
    missing = [str(path) for path in sources.values() if not path.is_file()]
    if missing:
        raise FileNotFoundError(
            f"--input-dir {str(input_dir)!r} lacks {missing}; pass the folder holding {sorted(names.values())}"
        )
    return sources


def build(
    *,
    variant: str = DEFAULT_VARIANT,
    input_dir: str | Path | None = None,
    hub_id: str | None = None,
    train_file: str | None = None,
    validation_size: int | None = None,
    seed: int = 0,
) -> DatasetDict:
    """GSM8K train/validation/test; ``seed`` only matters for carving the original variant's validation split.

    With neither ``input_dir`` nor ``hub_id`` the original variant reads the copy shipped with the package."""
    sources = check_options(
        variant=variant, input_dir=input_dir, hub_id=hub_id, train_file=train_file, validation_size=validation_size
    )
    if variant == "aug":
        splits = {split: _read(path, parse_deng_line) for split, path in sources.items()}
    else:
        if sources is None:
            read = _read_hub(hub_id)
        else:
            read = {split: _read(path, _parse_json_line) for split, path in sources.items()}
        splits = _carve_validation(read["train"], read["test"], validation_size or DEFAULT_VALIDATION_SIZE, seed)
    where = sources or {split: f"--hub-id {hub_id} split {split}" for split in ORIGINAL_FILES}
    empty = [str(where.get(split, where["train"])) for split, rows in splits.items() if not rows]
    if empty:
        raise ValueError(f"{empty} hold no examples; pass a source with non-empty files or splits")
    _check_disjoint(splits)
    return DatasetDict({split: make_split(*zip(*splits[split], strict=True)) for split in SPLITS})


def _parse_json_line(line: str) -> Example:
    return parse_original_record(json.loads(line))


def _read(path: Traversable, parse: Callable[[str], Example]) -> list[Example]:
    """Examples of the non-empty lines (of the decompressed file for ``.gz``), split on '\\n' only (a GSM8K
    question contains U+2028, which str.splitlines would cut); a bad line is reported with its file and number."""
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        data = gzip.decompress(data)
    examples = []
    for number, line in enumerate(data.decode("utf-8").split("\n"), start=1):
        if line:
            try:
                examples.append(parse(line))
            except (ValueError, KeyError, TypeError) as error:
                raise ValueError(f"{path}:{number}: {error}; fix that line or pass another --input-dir") from error
    return examples


def _read_hub(hub_id: str) -> dict[str, list[Example]]:
    """The train and test examples of config ``main`` of a Hub dataset laid out like ``openai/gsm8k``."""
    try:
        dataset = load_dataset(hub_id, HUB_CONFIG)
    except ConnectionError as error:
        raise ValueError(
            f"cannot reach the Hub for --hub-id {hub_id!r}; drop --hub-id to use the GSM8K copy shipped with the "
            f"package ({error})"
        ) from error
    examples = {}
    for split in ORIGINAL_FILES:
        if split not in dataset or not set(HUB_COLUMNS) <= set(dataset[split].column_names):
            raise ValueError(
                f"--hub-id {hub_id!r} config {HUB_CONFIG!r} has no {split} split with question and answer columns "
                f"(splits: { {name: rows.column_names for name, rows in dataset.items()} }); pass a dataset laid "
                "out like openai/gsm8k"
            )
        examples[split] = []
        for number, record in enumerate(dataset[split].select_columns(list(HUB_COLUMNS)), start=1):
            try:
                examples[split].append(parse_original_record(record))
            except ValueError as error:
                raise ValueError(f"--hub-id {hub_id!r} {split} row {number}: {error}") from error
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
        "--variant",
        choices=VARIANTS,
        default=DEFAULT_VARIANT,
        help=f"original: OpenAI's release; aug: Deng et al.'s files, with --input-dir (default {DEFAULT_VARIANT})",
    )
    parser.add_argument(
        "--input-dir",
        type=Path,
        help=f"folder with the source files: {', '.join(ORIGINAL_FILES.values())} (original; default: the copy "
        f"shipped in the package) or {', '.join(DENG_FILES.values())} (aug, required)",
    )
    parser.add_argument(
        "--hub-id",
        metavar="REPO_ID",
        help=f"original only: read this Hub dataset instead (config {HUB_CONFIG}, splits train/test, columns "
        "question/answer), e.g. openai/gsm8k",
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
    """The validation size of the original variant spelled out for the card's rebuild command."""
    if options["variant"] == "original" and options["validation_size"] is None:
        return {**options, "validation_size": DEFAULT_VALIDATION_SIZE}
    return options


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
        if options["hub_id"] is not None:
            source = f"the Hub dataset `{options['hub_id']}` (config `{HUB_CONFIG}`)"
        elif options["input_dir"] is not None:
            source = f"`{options['input_dir']}`"
        else:
            source = "the copy shipped with hf-seqvcr (github openai/grade-school-math at commit 3101c7d)"
        summary = (
            "GSM8K grade-school math word problems (Cobbe et al., 2021), original release, read from "
            f"{source}. The question is the problem text, the chain of thought the rationale before `#### ` "
            "(calculator annotations `<<expr=value>>` and newlines kept), the answer the final number with "
            f"thousands separators removed. Validation is a random subset of {options['validation_size']} train "
            "questions (NumPy PCG64 with the seed below); test is the original test set."
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
    description="Convert GSM8K (OpenAI's original release, shipped with the package, or Deng et al.'s implicit-CoT "
    "files) to the shared question/cot/answer schema.",
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
