"""Splits of rows in the schema of `hf_seqvcr.schema` (its one home), and Deng et al.'s one-line text format.

Joined as ``question||cot #### answer`` a row gives Deng et al.'s line format.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa
from datasets import Dataset, DatasetDict, Features, Value

from hf_seqvcr.schema import ANSWER_MARKER, COLUMNS, cot_target

SPLITS = ("train", "validation", "test")
FEATURES = Features({name: Value("string") for name in COLUMNS})  # what every builder writes


def to_line(row: dict[str, str]) -> str:
    """The row in Deng et al.'s text format: ``question||cot #### answer``."""
    return f"{row['question']}||{cot_target(row)}"


def from_line(line: str) -> dict[str, str]:
    """The row of a line in Deng et al.'s text format; the inverse of `to_line`."""
    question, separator, rest = line.partition("||")
    cot, marker, answer = rest.rpartition(f" {ANSWER_MARKER} ")
    if not separator or not marker:
        raise ValueError(f"{line[:80]!r} is not 'question||cot #### answer'")
    return {"question": question, "cot": cot, "answer": answer}


def make_split(
    question: Sequence[str] | pa.Array | pa.ChunkedArray,
    cot: Sequence[str] | pa.Array | pa.ChunkedArray,
    answer: Sequence[str] | pa.Array | pa.ChunkedArray,
) -> Dataset:
    """One split with exactly the shared features (Arrow arrays are taken as they are, no copy)."""
    columns = {"question": question, "cot": cot, "answer": answer}
    return Dataset.from_dict(
        {name: data if isinstance(data, (pa.Array, pa.ChunkedArray)) else list(data) for name, data in columns.items()},
        features=FEATURES,
    )


@dataclass(frozen=True)
class SplitSizes:
    """How many rows each split gets; every split must be non-empty so the DatasetDict always has all three."""

    train: int
    validation: int
    test: int

    def __post_init__(self) -> None:
        for split in SPLITS:
            size = getattr(self, split)
            if isinstance(size, bool) or not isinstance(size, int) or size < 1:
                raise ValueError(f"{split}_size must be a positive integer, got {size!r}; pass --{split}-size >= 1")

    @property
    def total(self) -> int:
        return self.train + self.validation + self.test

    def as_dict(self) -> dict[str, int]:
        return {split: getattr(self, split) for split in SPLITS}

    def check_capacity(self, capacity: int, what: str, fix: str) -> None:
        """Fail before any work when the splits ask for more distinct items than exist."""
        if self.total > capacity:
            raise ValueError(
                f"train_size + validation_size + test_size = {self.total:,} exceeds the {capacity:,} distinct "
                f"{what}; {fix} (at most {max(capacity - self.validation - self.test, 0):,} train rows fit)"
            )


def split_in_order(dataset: Dataset, sizes: SplitSizes) -> DatasetDict:
    """Cut rows drawn in random order into test, validation, train (in that order, so held-out rows come first).

    Rows are distinct, so the three splits are disjoint.
    """
    bounds = {"test": (0, sizes.test), "validation": (sizes.test, sizes.test + sizes.validation)}
    bounds["train"] = (sizes.test + sizes.validation, sizes.total)
    return DatasetDict({split: dataset.select(range(*bounds[split])) for split in SPLITS})
