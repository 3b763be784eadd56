"""Prints setup.cfg's install_requires and optional extras (`trl`) pinned to their lower bounds (`name==low`), then
the dev extra's test tools as they are (what runs the tests, not what is tested), one a line, for `make test-oldest`.

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


def _requirements(text: str) -> list[str]:
    return [line.strip() for line in text.split("\n") if line.strip()]


def _lower_bound(requirement: str) -> tuple[str, str]:
    match = re.fullmatch(r"([A-Za-z0-9_.-]+)\s*>=\s*([0-9][0-9A-Za-z.]*)\s*(,.*)?", requirement)
    if match is None:
        sys.exit(f"setup.cfg: no `>=` lower bound in {requirement!r}")
    return match.group(1), match.group(2)


def oldest_pins(setup_cfg: Path = SETUP_CFG) -> list[str]:
    config = configparser.ConfigParser()
    config.read(setup_cfg)
    extras = config["options.extras_require"]
    tested = _requirements(config["options"]["install_requires"])
    for extra in extras:
        if extra != "dev":
            tested += _requirements(extras[extra])
    pins = [f"{name}=={lower}" for name, lower in map(_lower_bound, tested) if name.lower() not in SKIP]
    pinned = {pin.split("==")[0].lower() for pin in pins}
    tools = [r for r in _requirements(extras["dev"]) if re.split(r"[<>=!~ ]", r)[0].lower() not in pinned]
    return pins + tools


if __name__ == "__main__":
    print("\n".join(oldest_pins()))
