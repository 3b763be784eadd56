"""Where a config's files live, mirroring ``DatasetDict.push_to_hub`` so a local directory and a Hub repo look alike."""

from __future__ import annotations

import re

_CONFIG_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def check_config_name(config_name: str) -> None:
    """Reject names that cannot be a folder and a Hub config at once."""
    if not isinstance(config_name, str) or not _CONFIG_NAME.fullmatch(config_name) or ".." in config_name:
        raise ValueError(
            f"config_name={config_name!r} is not usable as a config; pass --config-name made of letters, digits, "
            "'.', '_' or '-' (e.g. 5x5)"
        )
    if config_name == "data":
        raise ValueError("config_name='data' is reserved by datasets.push_to_hub; pass another --config-name")


def data_dir(config_name: str) -> str:
    """push_to_hub's folder for a config ('default' keeps its historical 'data' folder)."""
    return "data" if config_name == "default" else config_name


def shard_name(split: str, index: int, num_shards: int) -> str:
    return f"{split}-{index:05d}-of-{num_shards:05d}.parquet"


def config_entry(config_name: str, splits: list[str]) -> dict:
    """The card's ``configs:`` item that makes ``load_dataset(dir, config_name)`` find the shards."""
    folder = data_dir(config_name)
    return {
        "config_name": config_name,
        "data_files": [{"split": split, "path": f"{folder}/{split}-*"} for split in splits],
    }
