"""Shared fixtures for the plan tests: the starter plan as text, data, and loaders."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from drkit.plan.loader import parse_plan
from drkit.plan.models import Plan
from drkit.plan.starter import starter_plan

STARTER_DIR = Path("/srv/drkit-test")


@pytest.fixture(scope="session")
def starter_text() -> str:
    return starter_plan(STARTER_DIR)


@pytest.fixture(scope="session")
def _starter_data(starter_text: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(starter_text)
    return data


@pytest.fixture
def starter_data(_starter_data: dict[str, Any]) -> dict[str, Any]:
    """A fresh deep copy of the starter plan as plain data, for tests to mutate."""
    return copy.deepcopy(_starter_data)


def plan_from_data(data: dict[str, Any], env: dict[str, str] | None = None) -> Plan:
    """Dump ``data`` to YAML and load it the way drkit loads files."""
    text = yaml.safe_dump(data, sort_keys=False)
    return parse_plan(text, file="drkit.yaml", base_dir=STARTER_DIR, env=env or {})


@pytest.fixture
def from_data() -> Callable[..., Plan]:
    return plan_from_data


@pytest.fixture
def from_text() -> Callable[..., Plan]:
    def load(text: str, env: dict[str, str] | None = None) -> Plan:
        return parse_plan(text, file="drkit.yaml", base_dir=STARTER_DIR, env=env or {})

    return load
