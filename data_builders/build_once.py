"""Build a dataset once into a folder and reuse it: what `--build_dataset` and the benchmarks rely on.

The folder keeps the invocation it was built from (BUILD_COMMAND), so a rerun with the same invocation reuses it and
any other is refused instead of silently training on the wrong data. The build goes to a `.partial` sibling that is
renamed at the end, so an interrupted build leaves no half-written data behind.
"""

from __future__ import annotations

import shlex
import shutil
from importlib import import_module
from pathlib import Path

BUILD_COMMAND = "BUILD_COMMAND"


def build_once(invocation: str, target: str | Path) -> Path:
    """`invocation` ('multiplication --digits 4 --seed 0', a builder and its CLI flags) built into `target` once.

    Raises FileExistsError when `target` holds another build, RuntimeError when the builder fails (it printed why).
    """
    target = Path(target)
    stamp = target / BUILD_COMMAND
    if target.exists():
        built = stamp.read_text() if stamp.is_file() else None
        if built != invocation:
            raise FileExistsError(f"{target} holds data built by {built or 'something else'!r}, not {invocation!r}")
        return target
    builder, *options = shlex.split(invocation)
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.parent.mkdir(parents=True, exist_ok=True)
    try:
        if import_module(f"data_builders.{builder}").main([*options, "--output-dir", str(partial)]):
            raise RuntimeError(f"building {invocation!r} failed; see the builder's message above")
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    (partial / BUILD_COMMAND).write_text(invocation)
    partial.rename(target)
    return target
