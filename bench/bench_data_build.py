"""Time the paper-size 5×5 multiplication build (808k train + 1k + 1k rows) end to end through the CLI.

The target is under 60 s on 2 CPU cores, build and parquet write included. Prints rows/s and seconds only;
the data goes to a temporary directory that is removed afterwards.

    python bench/bench_data_build.py [--digits 5] [--train-size 808000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from datasets.utils.logging import disable_progress_bar

from data_builders import multiplication


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--digits", type=int, default=5)
    parser.add_argument("--train-size", type=int, default=multiplication.DEFAULT_TRAIN_SIZE)
    args = parser.parse_args()
    disable_progress_bar()
    rows = args.train_size + 2 * multiplication.DEFAULT_EVAL_SIZE
    with tempfile.TemporaryDirectory() as tmp:
        argv = ["--digits", str(args.digits), "--train-size", str(args.train_size), "--seed", "0"]
        start = time.perf_counter()
        multiplication.main([*argv, "--output-dir", str(Path(tmp) / "out")])
        seconds = time.perf_counter() - start
    print(
        f"{args.digits}x{args.digits} multiplication: {rows:,} rows built and written in {seconds:.1f} s "
        f"({rows / seconds:,.0f} rows/s)"
    )


if __name__ == "__main__":
    main()
