from pathlib import Path

import pytest

from hub_server import hub  # noqa: F401 -- first import: points HF_ENDPOINT at a loopback Hub before any HF client loads
from tokenizer_families import FAMILIES, save_family_model

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """`../shared` next to the checkout; tests that need the real data skip when it is absent."""
    if not SHARED.is_dir():
        pytest.skip("../shared is absent")
    return SHARED.resolve()


@pytest.fixture(scope="session")
def family_dirs(tmp_path_factory) -> dict[str, Path]:
    """{family: a tiny pretrained directory (model + tokenizer, save_pretrained)} for every tokenizer family of
    tests/tokenizer_families.py, built once per session in a second or so."""
    root = tmp_path_factory.mktemp("families")
    return {family: save_family_model(family, root / family) for family in FAMILIES}


@pytest.fixture(params=FAMILIES)
def family(request) -> str:
    """Parametrises a test over the tokenizer families (the names of tokenizer_families.FAMILIES)."""
    return request.param
