"""`SeqVCRParser`: dataclass arguments from a YAML file, overridden by command-line flags (TRL's `TrlParser` shape)."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml
from transformers import HfArgumentParser


class SeqVCRParser(HfArgumentParser):
    """`--config FILE.yaml` sets defaults, flags win; keys no dataclass knows are an error, not silently dropped.

    `alternatives` are groups of arguments that exclude each other (e.g. two data sources): one given as a flag also
    drops the others' config-file values, so a flag can switch a config to another alternative.
    """

    def __init__(self, dataclass_types, *, alternatives: Sequence[Sequence[str]] = (), **kwargs) -> None:
        super().__init__(dataclass_types, **kwargs)
        self.alternatives = [set(group) for group in alternatives]

    def parse_args_and_config(
        self, args: Sequence[str] | None = None, default_config: str | Path | None = None
    ) -> tuple:
        """Parse `args` (default: sys.argv), reading `--config` or, without one, `default_config`."""
        args = list(sys.argv[1:] if args is None else args)
        config_path = default_config
        if "--config" in args:
            index = args.index("--config")
            if index + 1 >= len(args):
                self.error("--config needs a path to a YAML file, e.g. --config recipes/gsm8k/demo.yaml")
            config_path = args[index + 1]
            del args[index : index + 2]
        if config_path is not None:
            config = self._read_config(Path(config_path))
            flags = {arg[2:].split("=")[0].replace("-", "_") for arg in args if arg.startswith("--")}
            for group in self.alternatives:
                if flags & group:
                    config = {key: value for key, value in config.items() if key not in group - flags}
            self.set_defaults(**config)
        return self.parse_args_into_dataclasses(args=args)

    def _read_config(self, path: Path) -> dict:
        if not path.is_file():
            self.error(f"--config {path}: no such file; pass a YAML file such as recipes/gsm8k/demo.yaml")
        config = yaml.safe_load(path.read_text()) or {}
        if not isinstance(config, dict):
            self.error(f"--config {path}: expected a mapping of argument names to values")
        known = {f.name for dtype in self.dataclass_types for f in dataclasses.fields(dtype) if f.init}
        unknown = sorted(set(config) - known)
        if unknown:
            self.error(f"--config {path}: unknown keys {unknown}; check their spelling against `--help`")
        return config
