"""Task datasets for hf-seqvcr in one row schema.

Each task module (``multiplication``, ``arithmetic``, ``lis``, ``gsm8k``, the looped-transformer tasks
``nary_addition``, ``phop``, ``igsm``, and the over-squashing tasks ``copying``, ``counting``) has a pure
``build(..., seed)`` returning a ``DatasetDict`` and a CLI (``python -m data_builders.<task> --help``) that writes a
directory laid out like a Hub dataset repo; ``load_task_dataset`` reads such a directory or a Hub dataset id back.
A new task declares a `cli.BuilderTask` and gets that CLI from `cli.main`; the docstring of ``cli.py`` shows how.
"""

from hf_seqvcr.schema import COLUMNS

from .build_once import build_once
from .card import dataset_card
from .dataset_dir import write_dataset_dir
from .loading import is_hub_dataset, load_task_dataset
from .splits import FEATURES, SPLITS, from_line, to_line

BUILDERS = ("multiplication", "arithmetic", "lis", "gsm8k", "nary_addition", "phop", "igsm", "copying", "counting")
"""The task modules, each with a `TASK` and `main(argv)`: what `--build_dataset` and the CLIs accept."""

__all__ = [
    "BUILDERS",
    "COLUMNS",
    "FEATURES",
    "SPLITS",
    "build_once",
    "dataset_card",
    "from_line",
    "is_hub_dataset",
    "load_task_dataset",
    "to_line",
    "write_dataset_dir",
]
