"""A plan with second-scale schedules over real local repositories."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml


def write_plan(tmp_path: Path, **overrides: Any) -> Path:
    data: dict[str, Any] = {
        "version": 1,
        "name": "agent-test",
        "tiers": {"critical": {"rto": "1h", "rpo": "10s"}, "standard": {"rto": "1h", "rpo": "1h"}},
        "repositories": {
            "primary": {"name": "primary", "url": f"file://{tmp_path / 'primary'}", "region": "eu"},
            "replicas": [
                {
                    "name": "replica",
                    "url": f"file://{tmp_path / 'replica'}",
                    "region": "us",
                    "copy_every": "3s",
                }
            ],
        },
        "datasets": [
            {
                "name": "train",
                "path": "./train",
                "tier": "critical",
                "schedule": "2s",
                "retention": {"keep_last": 2},
                "replicate_to": ["replica"],
            },
        ],
        "eval_sets": [{"name": "golden", "path": "./golden", "tier": "standard", "schedule": "1h"}],
        "testing": {"restore_test_every": "4s"},
    }
    data.update(overrides)
    for name in ("train", "golden"):
        (tmp_path / name).mkdir(exist_ok=True)
        (tmp_path / name / "data.jsonl").write_text(f'{{"{name}": 1}}\n')
    path = tmp_path / "drkit.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("DRKIT_PASSWORD", "pw")
    monkeypatch.setenv("DRKIT_KDF", "fast")
    monkeypatch.setenv("DRKIT_STATE", str(tmp_path / "state" / "state.db"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


# a real PostgreSQL for the shared state (tests/pgstate.py)
from tests.pgstate import pg_server, pg_state_url  # noqa: E402

__all__ = ["env", "pg_server", "pg_state_url", "write_plan"]
