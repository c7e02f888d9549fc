"""Shared test fixtures. ``shared_data`` is the real-data directory (``../shared/data`` beside the checkout, or
$POSEDISTILL_DATA); tests that use it skip with a visible reason when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def shared_data_dir() -> Path:
    """Where the shared real data is expected."""
    env = os.environ.get("POSEDISTILL_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path to the shared data directory; skips the test when it is not there."""
    path = shared_data_dir()
    if not path.is_dir():
        pytest.skip(f"shared data not found at {path} (set POSEDISTILL_DATA)")
    return path


@pytest.fixture(scope="session")
def lspet_mini() -> Path:
    """4 LSPET images + joints.mat (14, 3, 4), always present in tests/fixtures."""
    return FIXTURES / "lspet_mini"
