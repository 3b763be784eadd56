from hub_server import hub  # noqa: F401 -- first import: points HF_ENDPOINT at a loopback Hub before any HF client loads
import os
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """`../shared` next to the checkout; tests that need the real data skip when it is absent."""
    if not SHARED.is_dir():
        pytest.skip("../shared is absent")
    return SHARED.resolve()
