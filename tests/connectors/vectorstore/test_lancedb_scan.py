"""How a LanceDB store scans: a bounded read-ahead unless the user chose one."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from drkit.connectors.vectorstore.lancedb import FRAGMENT_READAHEAD
from drkit.connectors.vectorstore.registry import open_vector_store

KNOB = "LANCE_DEFAULT_FRAGMENT_READAHEAD"


def test_a_store_bounds_lances_read_ahead(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KNOB, raising=False)
    open_vector_store(f"lancedb://{tmp_path / 'a'}").close()
    assert os.environ[KNOB] == FRAGMENT_READAHEAD


def test_the_users_read_ahead_is_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KNOB, "8")
    open_vector_store(f"lancedb://{tmp_path / 'b'}").close()
    assert os.environ[KNOB] == "8"
