"""Fixtures shared by the runner's tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from runner_support import TOKEN


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``tmp_path`` as the working directory, with the emulators' token in ``EMU_TOKEN``."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EMU_TOKEN", TOKEN)
    return tmp_path
