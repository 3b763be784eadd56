"""Result folders of the diagnostic CLIs: an earlier run's results are replaced only when the user says so."""

from __future__ import annotations

from pathlib import Path

from transformers.hf_argparser import string_to_bool


def add_overwrite_argument(parser) -> None:
    """`--overwrite_output_dir`, the training scripts' spelling (a bare flag or a value, `true`), or `--overwrite`."""
    parser.add_argument(
        "--overwrite_output_dir",
        "--overwrite",
        dest="overwrite",
        type=string_to_bool,
        nargs="?",
        const=True,
        default=False,
        help="replace the results an earlier run left in --output_dir (refused without it)",
    )


def earlier_results(output_dir: Path, result_name: str, overwrite: bool) -> str | None:
    """The error to report, before any work, when `output_dir` holds `result_name` and no overwrite flag is given."""
    if (output_dir / result_name).exists() and not overwrite:
        return (
            f"--output_dir {output_dir} holds the results of an earlier run ({result_name}); pass another "
            "--output_dir, or --overwrite_output_dir to replace them"
        )
    return None
