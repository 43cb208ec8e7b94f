"""Fixtures for the standby tests: real engines on loopback (the vector tests' fixtures)."""

from __future__ import annotations

from tests.connectors.vectorstore.conftest import chroma_server, open_store, postgres

__all__ = ["chroma_server", "open_store", "postgres"]
