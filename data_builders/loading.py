"""Load a task dataset for the recipes from a builder directory or a Hub id, with errors that say what to do."""

from __future__ import annotations

import os
from pathlib import Path

from datasets import DatasetDict, load_dataset
from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id

from hf_seqvcr.schema import ANSWER_ONLY_COLUMNS

from .card_merge import card_metadata
from .dataset_dir import README


def load_task_dataset(
    source: str | os.PathLike, config_name: str | None = None, revision: str | None = None
) -> DatasetDict:
    """All splits of ``source`` (a local builder directory, else a Hub dataset id at ``revision``: a branch, tag
    or commit sha, default main), checked to have the task columns."""
    source = os.fspath(source)
    path = Path(source).expanduser()
    if path.exists():
        if revision is not None:
            raise ValueError(
                f"revision={revision!r} only applies to a Hub dataset id, but source={source!r} is a local "
                "directory; drop the revision"
            )
        dataset = _load_local(path, config_name)
    elif _looks_local(source):
        raise FileNotFoundError(
            f"source={source!r} does not exist; build it first (e.g. python -m data_builders.multiplication "
            f"--digits 5 --output-dir {source}) or pass a Hub dataset id like 'user/name'"
        )
    else:
        dataset = _load_hub(source, config_name, revision)
    for split, split_dataset in dataset.items():
        missing = [column for column in ANSWER_ONLY_COLUMNS if column not in split_dataset.column_names]
        if missing:
            raise ValueError(
                f"source={source!r} split {split!r} has no column(s) {missing} "
                f"(columns: {split_dataset.column_names}); pass a dataset made by data_builders, or rename its "
                "columns to question/cot/answer"
            )
    return dataset


def _load_local(path: Path, config_name: str | None) -> DatasetDict:
    if not path.is_dir():
        raise ValueError(
            f"source={str(path)!r} is a file; pass the directory a builder wrote (README.md + parquet shards)"
        )
    if not os.access(path, os.R_OK | os.X_OK):
        raise ValueError(f"source={str(path)!r} is not readable; fix its permissions or pass another directory")
    readme = path / README
    entries = {
        item["config_name"]: item
        for item in (card_metadata(readme.read_text(encoding="utf-8")).get("configs", []) if readme.is_file() else [])
    }
    configs = list(entries)
    if config_name is not None and configs and config_name not in configs:
        raise ValueError(f"config_name={config_name!r} is not in {str(path)!r}; pass one of {configs}")
    if config_name is None and len(configs) > 1:
        raise ValueError(f"{str(path)!r} holds several configs; pass config_name, one of {configs}")
    entry = entries.get(config_name) or (entries[configs[0]] if configs else {})
    return load_dataset(str(path), config_name, data_files=_data_files(path, entry.get("data_files")))


def _data_files(path: Path, data_files: object) -> dict[str, str] | None:
    """A card config's data files as absolute paths. Passed explicitly they key datasets' cache on the files
    (paths and mtimes); from the card alone the key is only the folder's name and the card's configs, so two
    builder directories named alike (e.g. two runs' ``_dataset``) would load each other's cached rows."""
    if not isinstance(data_files, list) or not all(isinstance(item, dict) for item in data_files):
        return None
    return {item["split"]: str(path.resolve() / item["path"]) for item in data_files}


def is_hub_dataset(source: str | os.PathLike) -> bool:
    """Whether `load_task_dataset` reads ``source`` from the Hub: it is no existing path and can be a repo id."""
    source = os.fspath(source)
    return not Path(source).expanduser().exists() and not _looks_local(source)


def _load_hub(repo_id: str, config_name: str | None, revision: str | None) -> DatasetDict:
    try:
        return load_dataset(repo_id, config_name, revision=revision)
    except ConnectionError as error:
        raise ValueError(
            f"source={repo_id!r} is not a local directory and we cannot reach the Hub; pass a local directory "
            f"(built with python -m data_builders.<task> --output-dir DIR) or go online ({error})"
        ) from error


def _looks_local(source: str) -> bool:
    """Paths a Hub id can never be: absolute, ./ ../ ~ prefixes, backslashes, more than one slash, invalid ids."""
    if source.startswith(("/", ".", "~")) or "\\" in source or source.count("/") > 1:
        return True
    try:
        validate_repo_id(source)
    except HFValidationError:
        return True
    return False
