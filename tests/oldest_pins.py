"""Prints setup.cfg's install_requires pinned to their lower bounds (`name==low`), then the dev extras as they
are (the test tools, not what is tested), one a line, for `make test-oldest`.

setup.cfg stays the one home of the bounds: this only reads them. torch is left out: the Makefile installs the CPU
build on disk (`TORCH`; one from the index would be a multi-GB CUDA build), and setup.cfg's torch floor is that
same version (tests/test_requirements.py checks it).
A lower bound must name a release that installs together with the others' lower bounds (pip resolves them at once).
"""

import configparser
import re
import sys
from pathlib import Path

SETUP_CFG = Path(__file__).resolve().parents[1] / "setup.cfg"
SKIP = {"torch"}


def oldest_pins(setup_cfg: Path = SETUP_CFG) -> list[str]:
    config = configparser.ConfigParser()
    config.read(setup_cfg)
    pins = []
    for requirement in config["options"]["install_requires"].split("\n"):
        if not requirement.strip():
            continue
        match = re.fullmatch(r"\s*([A-Za-z0-9_.-]+)\s*>=\s*([0-9][0-9A-Za-z.]*)\s*(,.*)?", requirement)
        if match is None:
            sys.exit(f"setup.cfg: no `>=` lower bound in {requirement.strip()!r}")
        name, lower = match.group(1), match.group(2)
        if name.lower() not in SKIP:
            pins.append(f"{name}=={lower}")
    return pins + [line.strip() for line in config["options.extras_require"]["dev"].split("\n") if line.strip()]


if __name__ == "__main__":
    print("\n".join(oldest_pins()))
