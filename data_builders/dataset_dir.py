"""Write a DatasetDict to a local directory laid out like a Hub dataset repo, without ever losing what was there.

The layout is what ``DatasetDict.push_to_hub(repo, config_name=...)`` creates:
``<config>/<split>-00000-of-0000N.parquet`` shards written by ``Dataset.to_parquet`` and a README.md whose
``configs:`` point at them, so ``load_dataset(directory, config_name)`` works and the directory can be uploaded
as it is.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from pathlib import Path

from datasets import DatasetDict

from .card import with_data_files
from .card_merge import card_metadata, merge_cards
from .compat import max_shard_bytes
from .layout import check_config_name, data_dir, shard_name

README = "README.md"


def check_output_dir(output_dir: str | os.PathLike, config_name: str) -> None:
    """Fail before any building when writing ``config_name`` into ``output_dir`` would be refused later."""
    check_config_name(config_name)
    out = Path(output_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"output_dir={str(out)!r} exists and is not a directory; pass a directory with --output-dir")
    folder = out / data_dir(config_name)
    readme = out / README
    ours = readme.is_file() and config_name in _config_names(readme.read_text(encoding="utf-8"))
    if folder.exists() and not ours:
        raise ValueError(
            f"{str(folder)!r} exists but {str(readme)!r} lists no config {config_name!r}, so it was not written by a "
            "builder; refusing to replace it: pass another --output-dir or --config-name"
        )


def write_dataset_dir(dataset: DatasetDict, output_dir: str | os.PathLike, *, config_name: str, card: str) -> Path:
    """Write ``dataset`` as config ``config_name`` of ``output_dir`` and return ``output_dir``.

    Other configs already in the directory and their parts of the card are kept. Everything is written to a
    temporary folder inside ``output_dir`` first and swapped in at the end, so a failure leaves the previous
    contents untouched.
    """
    check_output_dir(output_dir, config_name)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    folder = out / data_dir(config_name)
    readme = out / README
    merged = merge_cards(readme.read_text(encoding="utf-8"), card) if readme.exists() else card
    merged = with_data_files(merged, config_name, list(dataset))
    staging = Path(tempfile.mkdtemp(prefix=f".{config_name}.tmp-", dir=out))
    new_folder, new_readme, previous = staging / "new", staging / README, staging / "previous"
    installed = False
    try:
        new_folder.mkdir()
        for split, split_dataset in dataset.items():
            num_shards = max(1, math.ceil(split_dataset.data.nbytes / max_shard_bytes()))
            for index in range(num_shards):
                shard = split_dataset.shard(num_shards=num_shards, index=index, contiguous=True)
                shard.to_parquet(new_folder / shard_name(split, index, num_shards))
        new_readme.write_text(merged, encoding="utf-8")
        if folder.exists():
            folder.rename(previous)
        new_folder.rename(folder)
        installed = True
        os.replace(new_readme, readme)
    except BaseException:
        if installed:
            shutil.rmtree(folder)
        if previous.exists():
            previous.rename(folder)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out


def _config_names(card: str) -> list[str]:
    return [item.get("config_name") for item in card_metadata(card).get("configs", []) if isinstance(item, dict)]
