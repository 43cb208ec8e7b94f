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


COMPONENT_SECTIONS = (
    "vector_stores[]",
    "datasets[]",
    "models[]",
    "eval_sets[]",
    "eval_results[]",
    "harnesses[]",
    "mlflow_registries[]",
)


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


#: rules whose test carries a descriptive name instead of the id: rule -> test (checked to exist)
RULE_TESTS = {
    "R3": "repository/test_damage.py::"
    "test_a_stray_file_named_like_a_pack_but_not_ours_is_left_alone",
    "K3": "repository/test_damage.py::test_a_damaged_sole_key_is_not_a_wrong_password",
    "LG2": "repository/test_damage.py::test_an_interrupted_forget_is_finished_by_prune",
}


def test_every_repository_format_rule_is_tested() -> None:
    """Each rule id is named by a test function (``test_w1_w2_...``) or listed in
    ``RULE_TESTS`` with an existing test, as the format page promises ("every MUST below is
    enforced by a test")."""
    rules_ = must_rules()
    assert len(rules_) >= 21
    assert {"W1", "V5"} <= set(rules_)
    named: set[str] = set()
    functions: set[str] = set()
    for path in TESTS.rglob("test_*.py"):
        rel = path.relative_to(TESTS).as_posix()
        for name in re.findall(r"^\s*(?:async )?def test_(\w+)", path.read_text(), re.MULTILINE):
            named.update(part.upper() for part in name.split("_"))
            functions.add(f"{rel}::test_{name}")
    stale = {rule: test for rule, test in RULE_TESTS.items() if test not in functions}
    assert not stale, f"RULE_TESTS names tests that do not exist: {stale}"
    missing = [r for r in rules_ if r not in named and r not in RULE_TESTS]
    assert not missing, f"repository-format rules no test is named after: {missing}"


def slug(heading: str) -> str:
    """GitHub's anchor of a Markdown heading: lower case, punctuation but ``-`` and ``_``
    dropped, spaces to ``-``."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(doc: Path) -> set[str]:
    text = re.sub(r"^```.*?^```", "", doc.read_text(), flags=re.M | re.S)  # not in code
    return {slug(h) for h in re.findall(r"^#{1,6} (.+)$", text, flags=re.MULTILINE)}


ROOT = DOCS.parent
LINK = re.compile(r"\]\((?P<file>[A-Za-z0-9_./-]*\.md)?#(?P<anchor>[^)\s]+)\)")


def test_every_anchor_a_doc_links_to_exists() -> None:
    broken = []
    for doc in [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]:
        for m in LINK.finditer(doc.read_text()):
            target = (doc.parent / m.group("file")) if m.group("file") else doc
            if not target.exists() or m.group("anchor") not in anchors(target):
                broken.append(f"{doc.name}: {m.group(0)}")
    assert not broken, f"links to anchors that do not exist: {broken}"


def test_every_anchor_a_hint_names_exists() -> None:
    from drkit.plan.loader import doc_anchor

    plan_anchors = anchors(DOCS / "plan.md")
    missing = {f: doc_anchor(f) for f in Plan.model_fields if doc_anchor(f) not in plan_anchors}
    assert not missing, f"error hints link to docs/plan.md anchors that do not exist: {missing}"
    # and every `docs/X.md#anchor` written in the sources (hints, comments)
    broken = []
    for src in (ROOT / "src" / "drkit").rglob("*.py"):
        for m in re.finditer(r"docs/([a-z0-9_-]+\.md)#([A-Za-z0-9_-]+)", src.read_text()):
            doc = DOCS / m.group(1)
            if not doc.exists() or m.group(2) not in anchors(doc):
                broken.append(f"{src.name}: {m.group(0)}")
    assert not broken, f"hints link to anchors that do not exist: {broken}"


def test_a_plan_error_hint_links_to_an_existing_anchor(tmp_path: Path) -> None:
    from drkit.errors import PlanError
    from drkit.plan.loader import parse_plan
    from drkit.plan.starter import starter_plan

    plan_anchors = anchors(DOCS / "plan.md")
    base = starter_plan(tmp_path)
    checked = []
    for broken in (
        base.replace("name: my-assistant", "name: [x]"),
        base.replace("version: 1", "version: 7"),
        base.replace("  - name: kb\n", "  - name: kb\n    colour: red\n"),
        base.replace("status_page:\n", "status_page:\n  colour: red\n"),
        base.replace("  - {name: golden-qa,", "  - {colour: red, name: golden-qa,"),
    ):
        assert broken != base
        with pytest.raises(PlanError) as info:
            parse_plan(broken, file="drkit.yaml", base_dir=tmp_path, env={})
        hint = str(info.value.hint)
        if "plan.md#" not in hint:
            continue  # a hint without a link (e.g. "did you mean ...")
        anchor = hint.split("plan.md#", 1)[1].split()[0].rstrip(".,)`")
        assert anchor in plan_anchors, (str(info.value), hint)
        checked.append(anchor)
    assert {"top-level"} <= set(checked), checked  # name and version: once #name, #version


def test_docs_do_not_promise_commands_that_do_not_exist() -> None:
    paths = set(command_paths(typer.main.get_command(app)))
    texts = {d.name: d.read_text() for d in [ROOT / "README.md", *DOCS.glob("*.md")]}
    for name, text in texts.items():
        for m in re.finditer(r"`drkit ([a-z][a-z-]*)", text):
            cmd = m.group(1)
            if cmd in paths or any(p.startswith(cmd + " ") for p in paths):
                continue
            nearby = text[m.start() : m.start() + 200]
            assert "not implemented yet" in nearby, (
                f"{name} mentions `drkit {cmd}`, no such command"
            )


def test_demo_script_names_the_engine_the_demo_uses() -> None:
    script = (ROOT / "scripts" / "demo.sh").read_text()
    demo = (ROOT / "src" / "drkit" / "workspace" / "demo.py").read_text()
    assert '"lancedb://"' in demo
    assert "LanceDB" in script
    assert "Qdrant" not in script
