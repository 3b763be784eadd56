"""setup.cfg tells the truth: every import is declared, the bounds are the versions tested, one version string.

A package that arrives only as somebody else's dependency can vanish with their next release; importing it
means declaring it. Modules of an optional extra may import what that extra declares (and only they may).
"""

import ast
import configparser
import importlib.metadata
import re
import sys
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ("hf_seqvcr", "data_builders", "recipes")
LOCAL = {"hf_seqvcr", "data_builders", "recipes"}
# The one home of which module belongs to which optional extra of setup.cfg: only these may import its packages.
EXTRA_MODULES: dict[str, list[str]] = {"trl": ["hf_seqvcr/sft_config.py", "hf_seqvcr/sft_trainer.py"]}


def imported_top_level(source: str) -> set[str]:
    """Top-level names of every absolute import in `source`, wherever it sits (functions, TYPE_CHECKING)."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name.partition(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.partition(".")[0])
    return names


def requirement_names(lines: str) -> set[str]:
    return {canonicalize_name(Requirement(line).name) for line in lines.splitlines() if line.strip()}


def setup_cfg(path: Path = ROOT / "setup.cfg") -> configparser.ConfigParser:
    config = configparser.ConfigParser()
    config.read(path)
    return config


def declared() -> tuple[set[str], dict[str, set[str]]]:
    """(install_requires, extra -> its requirements), as canonical distribution names."""
    config = setup_cfg()
    extras = config["options.extras_require"] if config.has_section("options.extras_require") else {}
    return requirement_names(config["options"]["install_requires"]), {
        k: requirement_names(v) for k, v in extras.items()
    }


def undeclared(
    files: dict[str, str],
    install_requires: set[str],
    extras: dict[str, set[str]],
    extra_modules: dict[str, list[str]],
    module_to_distributions: dict[str, list[str]],
) -> list[str]:
    """'path: module (distribution)' for every import of `files` (path -> source) that nothing declares."""
    problems = []
    for path, source in sorted(files.items()):
        allowed = set(install_requires)
        for extra, paths in extra_modules.items():
            if path in paths:
                allowed |= extras.get(extra, set())
        for module in sorted(imported_top_level(source) - LOCAL - set(sys.stdlib_module_names)):
            distributions = {canonicalize_name(d) for d in module_to_distributions.get(module, [])}
            if not distributions:
                problems.append(f"{path}: {module} (no installed distribution provides it)")
            elif not distributions & allowed:
                problems.append(f"{path}: {module} ({', '.join(sorted(distributions))} is not declared)")
    return problems


def shipped_sources() -> dict[str, str]:
    return {
        path.relative_to(ROOT).as_posix(): path.read_text(encoding="utf-8")
        for package in SHIPPED
        for path in sorted((ROOT / package).rglob("*.py"))
    }


def test_every_import_of_the_shipped_code_is_declared_in_setup_cfg():
    install_requires, extras = declared()
    problems = undeclared(
        shipped_sources(), install_requires, extras, EXTRA_MODULES, importlib.metadata.packages_distributions()
    )
    assert not problems, (
        "imported but not declared in setup.cfg install_requires (or the module's extra):\n" + "\n".join(problems)
    )


def test_the_check_catches_an_undeclared_import_and_accepts_an_extra_only_in_its_module():
    """Control arm: the checker itself flags what it should, so a green run above means something."""
    files = {
        "hf_seqvcr/a.py": "import os\nimport yaml\nfrom . import b\nfrom hf_seqvcr import c\n",
        "hf_seqvcr/sft.py": "def f():\n    import trl\n",
        "hf_seqvcr/other.py": "from trl import SFTTrainer\n",
    }
    distributions = {"yaml": ["PyYAML"], "trl": ["trl"]}
    found = undeclared(files, {"torch"}, {"trl": {"trl"}}, {"trl": ["hf_seqvcr/sft.py"]}, distributions)
    assert found == ["hf_seqvcr/a.py: yaml (pyyaml is not declared)", "hf_seqvcr/other.py: trl (trl is not declared)"]
    assert undeclared(files, {"pyyaml", "trl"}, {}, {}, distributions) == []


def test_the_torch_floor_is_the_torch_that_make_test_oldest_installs():
    """tests/oldest_pins.py pins every other floor; torch comes from the Makefile's CPU wheel, so compare them."""
    tested = re.search(r"^TORCH := torch==(\S+)$", (ROOT / "Makefile").read_text(), re.M).group(1)
    torch = next(
        Requirement(line)
        for line in setup_cfg()["options"]["install_requires"].splitlines()
        if line.strip().startswith("torch")
    )
    floor = next(spec.version for spec in torch.specifier if spec.operator == ">=")
    assert Version(floor) == Version(tested), f"setup.cfg says torch>={floor}, `make test-oldest` runs torch {tested}"


def test_python_requires_admits_no_python_a_dependency_refuses():
    floor = setup_cfg()["options"]["python_requires"].strip().removeprefix(">=")
    install_requires, _ = declared()
    refusing = {
        name: requires
        for name in install_requires
        if (requires := importlib.metadata.metadata(name)["Requires-Python"])
        and not Requirement(f"x{requires}").specifier.contains(floor)
    }
    assert not refusing, f"python_requires >={floor}, but these need more: {refusing}"


def test_the_version_has_one_home_setup_cfg():
    import hf_seqvcr

    assert hf_seqvcr.__version__ == importlib.metadata.version("hf-seqvcr") == setup_cfg()["metadata"]["version"]
    init = ast.parse((ROOT / "hf_seqvcr" / "__init__.py").read_text())
    literals = [
        node
        for node in ast.walk(init)
        if isinstance(node, ast.Assign)
        and any(getattr(t, "id", None) == "__version__" for t in node.targets)
        and isinstance(node.value, ast.Constant)
    ]
    assert not literals, "hf_seqvcr/__init__.py spells the version out; read it from the installed metadata"
