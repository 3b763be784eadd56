"""Result folders of the diagnostic CLIs: an earlier run's results are replaced only when the user says so."""

from __future__ import annotations

from pathlib import Path


def add_overwrite_argument(parser) -> None:
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the results an earlier run left in --output-dir (refused without it)")  # fmt: skip


def earlier_results(output_dir: Path, result_name: str, overwrite: bool) -> str | None:
    """The error to report, before any work, when `output_dir` holds `result_name` and `--overwrite` is not given."""
    if (output_dir / result_name).exists() and not overwrite:
        return (f"--output-dir {output_dir} holds the results of an earlier run ({result_name}); pass another "
                "--output-dir, or --overwrite to replace them")
    return None
