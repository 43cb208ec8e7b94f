"""Plans for drill tests: a serving-only plan built from a dict, written beside tmp state."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "docs" / "drill-journal.schema.json").read_text())

#: fast ejection and probes so a rehearsal costs about a second; deadlines generous
#: enough for a loaded machine (with eject_after 1 no request waits on a black hole)
FAST_GATEWAY = {"health": {"eject_after": 1, "eject_for": "1s", "probe_every": "500ms"}}
FAST_DEADLINES = {"connect": "3s", "first_token": "3s", "stream_idle": "3s", "total": "20s"}


def target(name: str, provider: str, region: str) -> dict[str, Any]:
    base = "http://127.0.0.1:9/v1" if provider == "openai" else "http://127.0.0.1:9"
    return {
        "name": name,
        "provider": provider,
        "region": region,
        "model": f"{name}-model",
        "base_url": base,
    }


def serving_plan(targets: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    if targets is None:
        targets = [target("sim-eu", "openai", "eu-west"), target("sim-us", "anthropic", "us-east")]
    return {
        "version": 1,
        "name": "drill-test",
        "tiers": {"critical": {"rto": "5m", "rpo": "15m", "multi_region": True}},
        "repositories": {
            "primary": {
                "name": "primary",
                "url": "file:///nonexistent/drkit-repo",
                "region": "eu-west",
                "password_env": "DRKIT_TEST_UNUSED_PW",
            }
        },
        "serving": {
            "auth": {"disabled": True},
            "gateway": FAST_GATEWAY,
            "routes": [
                {
                    "name": "assistant",
                    "tier": "critical",
                    "deadlines": FAST_DEADLINES,
                    "targets": targets,
                }
            ],
        },
        "testing": {
            "restore_test_every": "30d",
            "failover_drill_every": "90d",
            "regional_failover_every": "365d",
        },
    }


def single_target_plan() -> dict[str, Any]:
    """A route with only a primary: the black hole then holds each request a deadline,
    so that deadline is short."""
    data = serving_plan([target("only-eu", "openai", "eu-west")])
    data["serving"]["routes"][0]["deadlines"] = {**FAST_DEADLINES, "first_token": "1s"}
    return data


WritePlan = Callable[[dict[str, Any]], Path]


@pytest.fixture
def write_plan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> WritePlan:
    monkeypatch.delenv("DRKIT_STATE", raising=False)

    def write(data: dict[str, Any]) -> Path:
        path = tmp_path / "drkit.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    return write


def validate_journal(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    jsonschema.validate(data, SCHEMA)
    return data
