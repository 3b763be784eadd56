"""References to the docs resolve: every `docs/<page>.md §N` names a page and a numbered section that exist,
and nothing a user reads points at the private notes the docs replaced."""

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = re.compile(r"docs/([A-Za-z_]+\.md)(?:,? §(\d+))?")
PRIVATE_NOTES = re.compile(r"METHOD\.md|RELATED_METHODS|HUB_API")


def tracked_text_files() -> dict[str, str]:
    names = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    return {
        name: (ROOT / name).read_text(encoding="utf-8")
        for name in names
        if name.endswith((".py", ".md", ".yaml", ".cfg", ".toml")) and (ROOT / name).is_file()
    }


def test_every_docs_reference_names_a_page_and_section_that_exist():
    broken = []
    for name, text in tracked_text_files().items():
        for page, section in REFERENCE.findall(text):
            target = ROOT / "docs" / page
            if not target.is_file():
                broken.append(f"{name}: docs/{page} does not exist")
            elif section and not re.search(rf"^## {section}\. ", target.read_text(encoding="utf-8"), re.M):
                broken.append(f"{name}: docs/{page} has no section {section}")
    assert not broken, "\n".join(broken)


def test_nothing_points_at_the_private_notes():
    stale = [name for name, text in tracked_text_files().items() if PRIVATE_NOTES.search(text)]
    assert sorted(set(stale) - {"tests/test_docs.py"}) == []
