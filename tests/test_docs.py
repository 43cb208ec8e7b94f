"""The docs cover the product: every CLI command is in docs/cli.md, every plan field in
docs/plan.md, every lint rule in docs/framework.md. Commands added later are walked too."""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main
from pydantic import BaseModel

from drkit.cli.main import app
from drkit.plan.lint import rules
from drkit.plan.models import Component, Plan
from drkit.plan.schedule import CronSchedule, IntervalSchedule

DOCS = Path(__file__).resolve().parents[1] / "docs"
VALUE_TYPES = (IntervalSchedule, CronSchedule)  # written as strings; documented as syntax


def command_paths(command: Any, prefix: str = "") -> Iterator[str]:
    """``"plan check"``-style paths of every visible leaf command (typer vendors click, so
    groups are recognised by their ``commands`` mapping)."""
    subcommands = getattr(command, "commands", None)
    if isinstance(subcommands, dict):
        for name, sub in sorted(subcommands.items()):
            if getattr(sub, "hidden", False):
                continue
            yield from command_paths(sub, f"{prefix} {name}".strip())
    elif prefix:
        yield prefix


def _models(annotation: Any) -> list[tuple[str, type[BaseModel]]]:
    """(path suffix, model) pairs reachable through Optional/list/dict/Annotated."""
    origin = typing.get_origin(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [] if issubclass(annotation, VALUE_TYPES) else [("", annotation)]
    if origin is typing.Annotated:
        return _models(typing.get_args(annotation)[0])
    if origin is list:
        return [("[]" + s, m) for s, m in _models(typing.get_args(annotation)[0])]
    if origin is dict:
        return [(".<name>" + s, m) for s, m in _models(typing.get_args(annotation)[1])]
    if origin in (typing.Union, types.UnionType):
        return [pair for arg in typing.get_args(annotation) for pair in _models(arg)]
    return []


def plan_fields(model: type[BaseModel] = Plan, prefix: str = "") -> Iterator[str]:
    for name, info in model.model_fields.items():
        path = f"{prefix}.{name}" if prefix else name
        yield path
        for suffix, sub in _models(info.annotation):
            yield from plan_fields(sub, path + suffix)


def test_every_cli_command_is_documented() -> None:
    text = (DOCS / "cli.md").read_text()
    root = typer.main.get_command(app)
    paths = list(command_paths(root))
    assert {"version", "init", "plan check", "plan show", "plan schema"} <= set(paths)
    missing = [p for p in paths if f"drkit {p}" not in text]
    assert not missing, f"commands missing from docs/cli.md: {missing}"
    groups = {p.split()[0] for p in paths if " " in p}  # command groups, not single commands
    headings = set(re.findall(r"^## drkit (\S+)", text, flags=re.MULTILINE))
    assert not groups - headings, f"no `## drkit <group>` section for: {groups - headings}"


COMPONENT_SECTIONS = ("vector_stores[]", "datasets[]", "models[]", "eval_sets[]", "eval_results[]")


def spellings(path: str) -> list[str]:
    """A field's documented names: its path, and for the fields every component shares
    (name, tier, schedule, retention, ...) the generic ``<component>.field`` form."""
    out = [path]
    section, _, rest = path.partition(".")
    if section in COMPONENT_SECTIONS and rest.split(".")[0] in Component.model_fields:
        out.append(f"<component>.{rest}")
    return out


def test_every_plan_field_is_documented() -> None:
    text = (DOCS / "plan.md").read_text()
    fields = list(plan_fields())
    assert "serving.routes[].targets[].api_key_env" in fields
    assert "tiers.<name>.rpo" in fields
    missing = [f for f in fields if not any(f"`{s}`" in text for s in spellings(f))]
    assert not missing, f"plan fields missing from docs/plan.md (as `path`): {missing}"


def test_every_lint_rule_is_documented() -> None:
    text = (DOCS / "framework.md").read_text()
    missing = [f"{r.id} {r.name}" for r in rules() if r.id not in text or r.name not in text]
    assert not missing, f"lint rules missing from docs/framework.md: {missing}"


# --- HTTP endpoints, URL schemes, drill scenarios, repository-format rules ---------------

TESTS = Path(__file__).resolve().parent


def http_endpoints(app: Any) -> set[str]:
    """``"GET /healthz"``-style endpoints of a Starlette app (found through ``.routes``,
    also behind a wrapper that keeps the Starlette app as ``.app``)."""
    while not hasattr(app, "routes") and hasattr(app, "app"):
        app = app.app
    return {
        f"{method} {route.path}"
        for route in app.routes
        for method in sorted(route.methods or ())
        if method != "HEAD"
    }


def test_every_gateway_endpoint_is_documented(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.gateway.gwkit import CLIENT_KEY, CLIENT_KEYS_ENV, make_config

    from drkit.gateway.app import create_app

    monkeypatch.setenv(CLIENT_KEYS_ENV, CLIENT_KEY)
    endpoints = http_endpoints(create_app(make_config()))
    assert {"POST /v1/chat/completions", "POST /v1/messages", "GET /healthz"} <= endpoints
    text = (DOCS / "gateway.md").read_text()
    missing = sorted(e for e in endpoints if f"`{e}`" not in text)
    assert not missing, f"gateway endpoints missing from docs/gateway.md: {missing}"


def test_every_simulator_endpoint_is_documented() -> None:
    from drkit.connectors.llm.simulator_app import SimState, build_app

    text = (DOCS / "simulator.md").read_text()
    for dialect in ("openai", "anthropic"):
        endpoints = http_endpoints(build_app(SimState(dialect)))
        assert "GET /_sim/stats" in endpoints
        missing = sorted(e for e in endpoints if f"`{e}`" not in text)
        assert not missing, f"{dialect} simulator endpoints missing from docs/simulator.md"


def test_every_url_scheme_is_documented() -> None:
    from drkit.connectors.objectstore import registry as objectstores
    from drkit.connectors.vectorstore import registry as vectorstores

    for registry, page in ((objectstores, "storage.md"), (vectorstores, "vector-stores.md")):
        text = (DOCS / page).read_text()
        assert registry.BUILTIN
        missing = sorted(s for s in registry.BUILTIN if f"{s}://" not in text)
        assert not missing, f"URL schemes missing from docs/{page}: {missing}"


def test_every_drill_scenario_is_documented() -> None:
    from drkit.drills.scenarios import SCENARIOS

    text = (DOCS / "drills.md").read_text()
    assert {"provider-outage", "region-outage", "data-corruption"} <= set(SCENARIOS)
    missing = sorted(name for name in SCENARIOS if f"`{name}`" not in text)
    assert not missing, f"drill scenarios missing from docs/drills.md: {missing}"


def must_rules() -> list[str]:
    """The rule ids of docs/repository-format.md (``- W1. ... MUST ...`` list items)."""
    text = (DOCS / "repository-format.md").read_text()
    return re.findall(r"^- ([A-Z]{1,3}\d+)\. ", text, flags=re.MULTILINE)


def test_every_repository_format_rule_is_tested() -> None:
    """Each rule id is named by a test function (``test_w1_w2_...``), as the format page
    promises ("every MUST below is enforced by a test")."""
    rules_ = must_rules()
    assert len(rules_) >= 21
    assert {"W1", "V5"} <= set(rules_)
    named: set[str] = set()
    for path in TESTS.rglob("test_*.py"):
        for name in re.findall(r"^\s*(?:async )?def test_(\w+)", path.read_text(), re.MULTILINE):
            named.update(part.upper() for part in name.split("_"))
    missing = [r for r in rules_ if r not in named]
    assert not missing, f"repository-format rules no test is named after: {missing}"
