"""The one place the builders rely on a `datasets` internal; tests/test_compat.py pins it against upstream."""

from __future__ import annotations

from datasets.config import MAX_SHARD_SIZE
from datasets.utils.py_utils import convert_file_size_to_int


def max_shard_bytes() -> int:
    """The shard size `Dataset.push_to_hub` uses by default (`datasets.config.MAX_SHARD_SIZE`), in bytes, so a local
    build is written in the shards a push of it would make."""
    return convert_file_size_to_int(MAX_SHARD_SIZE)
