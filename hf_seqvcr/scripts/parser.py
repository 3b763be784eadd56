"""`SeqVCRParser`: dataclass arguments from a YAML file, overridden by command-line flags (TRL's `TrlParser` shape)."""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml
from transformers import HfArgumentParser

CONFIG_FLAG = "--config"


class SeqVCRParser(HfArgumentParser):
    """`--config FILE.yaml` sets defaults, flags win; keys no dataclass knows are an error, not silently dropped.

    `alternatives` are groups of arguments that exclude each other (e.g. two data sources): one given as a flag also
    drops the others' config-file values, so a flag can switch a config to another alternative. After parsing,
    `given` holds the names the user set (as a flag or in the config file), so callers can tell a choice from a
    default, and `config_path` the file the defaults came from. Errors print one short usage line and the message,
    with the closest valid flag for a misspelled one.
    """

    def __init__(self, dataclass_types, *, alternatives: Sequence[Sequence[str]] = (), **kwargs) -> None:
        super().__init__(dataclass_types, **kwargs)
        self.alternatives = [set(group) for group in alternatives]
        self.given: set[str] = set()
        self.config_path: Path | None = None
        self.add_argument(  # parsed by hand before the dataclasses see the flags; listed here for --help
            CONFIG_FLAG,
            metavar="FILE.yaml",
            default=argparse.SUPPRESS,
            help="YAML file of argument defaults (the recipe's demo.yaml without it); flags override its values",
        )

    def parse_args_and_config(
        self, args: Sequence[str] | None = None, default_config: str | Path | None = None
    ) -> tuple:
        """Parse `args` (default: sys.argv), reading `--config` or, without one, `default_config`."""
        args = list(sys.argv[1:] if args is None else args)
        config_path = default_config
        args = [part for arg in args for part in (arg.split("=", 1) if arg.startswith(CONFIG_FLAG + "=") else [arg])]
        if CONFIG_FLAG in args:
            index = args.index(CONFIG_FLAG)
            if index + 1 >= len(args):
                self.error(f"{CONFIG_FLAG} needs a path to a YAML file, e.g. {CONFIG_FLAG} recipes/gsm8k/demo.yaml")
            config_path = args[index + 1]
            del args[index : index + 2]
        flags = {arg[2:].split("=")[0].replace("-", "_") for arg in args if arg.startswith("--")}
        config = {}
        if config_path is not None:
            config = self._read_config(Path(config_path))
            for group in self.alternatives:
                if flags & group:
                    config = {key: value for key, value in config.items() if key not in group - flags}
                elif len(group & set(config)) > 1:
                    self.error(
                        f"{config_path} sets {', '.join(sorted(group & set(config)))}, which exclude each "
                        "other; keep one in the file, or pass one as a flag to replace the file's choice"
                    )
            self.set_defaults(**config)
        self.given = flags | set(config)
        self.config_path = None if config_path is None else Path(config_path)
        parsed = self.parse_known_args(args=args)[1]
        if parsed:
            self.error(f"unrecognized arguments: {' '.join(parsed)}{self._suggestion(parsed)}")
        return self.parse_args_into_dataclasses(args=args)

    def _known_flags(self) -> list[str]:
        return [option for action in self._actions for option in action.option_strings if option.startswith("--")]

    def _suggestion(self, unknown: Sequence[str]) -> str:
        flags = [arg.split("=")[0] for arg in unknown if arg.startswith("--")]
        close = [
            match for flag in flags for match in difflib.get_close_matches(flag, self._known_flags(), n=1, cutoff=0.75)
        ]
        return f" (did you mean {' / '.join(close)}?)" if close else ""

    def error(self, message: str):
        """The message first and a one-line usage, instead of argparse's full usage dump of every Trainer flag."""
        self.exit(
            2,
            f"{self.prog}: error: {message}\nusage: {self.prog} [{CONFIG_FLAG} FILE.yaml] [--FLAG VALUE ...]"
            f"   ({self.prog} --help lists every flag)\n",
        )

    def _read_config(self, path: Path) -> dict:
        if not path.is_file():
            self.error(f"{CONFIG_FLAG} {path}: no such file; pass a YAML file such as recipes/gsm8k/demo.yaml")
        try:
            config = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as error:
            self.error(f"{CONFIG_FLAG} {path}: not valid YAML: {str(error).replace('<unicode string>', str(path))}")
        if not isinstance(config, dict):
            self.error(f"{CONFIG_FLAG} {path}: expected a mapping of argument names to values")
        known = {f.name for dtype in self.dataclass_types for f in dataclasses.fields(dtype) if f.init}
        unknown = sorted(set(config) - known)
        if unknown:
            close = {key: difflib.get_close_matches(key, known, n=1, cutoff=0.75) for key in unknown}
            hints = ", ".join(f"{key} → {match[0]}" for key, match in close.items() if match)
            self.error(
                f"{CONFIG_FLAG} {path}: unknown keys {unknown}; check their spelling against `--help`"
                + (f" (did you mean {hints}?)" if hints else "")
            )
        return config
