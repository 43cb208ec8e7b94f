"""The docs cover the product: every CLI command is in docs/cli.md, every plan field in
docs/plan.md, every lint rule in docs/framework.md. Commands added later are walked too."""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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
