"""Dependencies run one way: the library → the data builders → the training pipeline (`hf_seqvcr.scripts`).

Imports are read from the source (those inside functions count too), so a lazy import cannot hide a wrong
direction; one subprocess also imports every library module and checks what it pulled in. The library also holds
no builder-only code: what only the data builders use lives in `data_builders`.
"""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("hf_seqvcr", "data_builders")
PIPELINE = "hf_seqvcr.scripts"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(path): path for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py"))}


def _resolve(name: str) -> str | None:
    """The project module an import names (`pkg.mod`, or the package itself), None outside the project."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str) -> set[str]:
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(_resolve(alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            found.update(_resolve(f"{base}.{alias.name}") for alias in node.names)
    return {name for name in found if name and name != module}


GRAPH = {module: _imports(module) for module in MODULES}


def _reachable(start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for name in GRAPH[todo.pop()] - seen:
            seen.add(name)
            todo.append(name)
    return seen


def _is_pipeline(module: str) -> bool:
    return module == PIPELINE or module.startswith(PIPELINE + ".")


def test_the_library_reaches_neither_the_builders_nor_the_pipeline():
    library = [m for m in MODULES if m.startswith("hf_seqvcr") and not _is_pipeline(m)]
    assert "hf_seqvcr.trainer" in library and "hf_seqvcr.losses" in library
    wrong = {m: sorted(n for n in _reachable(m) if n.startswith("data_builders") or _is_pipeline(n)) for m in library}
    assert not {m: names for m, names in wrong.items() if names}


def test_the_builders_do_not_reach_the_pipeline():
    builders = [m for m in MODULES if m.startswith("data_builders")]
    wrong = {m: sorted(n for n in _reachable(m) if _is_pipeline(n)) for m in builders}
    assert not {m: names for m, names in wrong.items() if names}


def test_no_module_imports_itself_through_any_path():
    assert not [m for m in MODULES if m in _reachable(m)]


def _library(module: str) -> bool:
    return module.startswith("hf_seqvcr") and not _is_pipeline(module)


def _top_level_names(module: str) -> set[str]:
    """Public functions, classes and constants a module defines."""
    names = set()
    for node in ast.parse(MODULES[module].read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name) and t.id.isupper())
    return {name for name in names if not name.startswith("_")}


def _used_names(module: str) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(MODULES[module].read_text())):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            names.add(node.id)
        elif isinstance(node, ast.Attribute):
            names.add(node.attr)
        elif isinstance(node, ast.alias):
            names.add(node.name.rpartition(".")[2])
    return names


def builder_only(modules: dict[str, set[str]], used: dict[str, set[str]]) -> list[str]:
    """`module.name` of every library definition that only data_builders modules use (by name)."""
    found = []
    for module, names in modules.items():
        for name in sorted(names):
            users = {other for other, uses in used.items() if name in uses}  # its own module counts
            if users and all(user.startswith("data_builders") for user in users):
                found.append(f"{module}.{name}")
    return found


def test_the_library_holds_no_builder_only_code():
    library = {m: _top_level_names(m) for m in MODULES if _library(m)}
    assert builder_only(library, {m: _used_names(m) for m in MODULES}) == []


def test_builder_only_flags_a_definition_only_the_builders_use():
    """Control arm: the same check on a made-up graph."""
    library = {"hf_seqvcr.hub": {"push_dataset", "validate_repo_id"}}
    used = {"data_builders.cli": {"push_dataset", "validate_repo_id"}, "hf_seqvcr.scripts.train": {"validate_repo_id"}}
    assert builder_only(library, used) == ["hf_seqvcr.hub.push_dataset"]


def test_the_pipeline_sits_above_both():
    assert {"data_builders"} <= {n.split(".")[0] for n in _reachable("hf_seqvcr.scripts.train")}


def test_importing_every_library_module_loads_no_builder_or_pipeline_module():
    library = [m for m in MODULES if m.startswith("hf_seqvcr") and not _is_pipeline(m)]
    code = (
        "import importlib, sys\n"
        f"for name in {library!r}: importlib.import_module(name)\n"
        "print(sorted(m for m in sys.modules if m.startswith(('data_builders', 'hf_seqvcr.scripts'))))"
    )
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.strip() == "[]"
