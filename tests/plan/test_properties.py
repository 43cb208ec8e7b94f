"""Property-based tests: random and mutated YAML never makes the loader raise anything
but PlanError, and whatever loads can be linted, dumped and shown without crashing."""

from __future__ import annotations

import copy
import json
import os
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drkit.errors import PlanError
from drkit.plan.lint import lint
from drkit.plan.loader import parse_plan
from drkit.plan.models import Plan

# DRKIT_FULL_CAMPAIGN=1 runs the long campaign (thousands of examples per property)
SETTINGS = settings(
    max_examples=3000 if os.environ.get("DRKIT_FULL_CAMPAIGN") == "1" else 120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
ENV = {"SET": "value", "NUM": "12", "EMPTY": ""}


def load_or_plan_error(text: str) -> Plan | None:
    error: PlanError | None = None
    try:
        plan = parse_plan(text, file="fuzz.yaml", env=ENV)
    except PlanError as exc:
        error = exc
    if error is not None:
        assert str(error).startswith("fuzz.yaml")  # always located
        assert "\n" not in str(error)  # one line, for the CLI
        return None
    # whatever loads must also lint, dump and serialise cleanly
    lint(plan)
    json.loads(plan.model_dump_json())
    return plan


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(
        [
            "1h",
            "5 mins",
            "0 * * * *",
            "61 * * * *",
            "${SET}",
            "${MISSING}",
            "$${X}",
            "${",
            "critical",
            "standard",
            "us-replica",
            "primary",
            "train",
            "openai",
            "anthropic",
            "file:///x",
            "https://x.example",
            "-1d",
            "1e400s",
            "99999999999999999999999d",
        ]
    ),
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.text(max_size=12), children, max_size=4),
    ),
    max_leaves=12,
)


@SETTINGS
@given(st.text(max_size=400))
def test_random_text(text: str) -> None:
    load_or_plan_error(text)


@SETTINGS
@given(values)
def test_random_yaml_documents(value: Any) -> None:
    load_or_plan_error(yaml.safe_dump(value))


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


@SETTINGS
@given(data=st.data())
def test_mutated_starter_data(starter_data: dict[str, Any], data: st.DataObject) -> None:
    doc = copy.deepcopy(starter_data)
    for _ in range(data.draw(st.integers(1, 3))):
        paths = [p for p in _paths(doc) if p]
        if not paths:
            break
        path = data.draw(st.sampled_from(paths))
        parent = doc
        for step in path[:-1]:
            parent = parent[step]
        action = data.draw(st.sampled_from(["replace", "delete", "add-key"]))
        if action == "replace":
            parent[path[-1]] = data.draw(values)
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[data.draw(st.text(max_size=10))] = data.draw(values)
    load_or_plan_error(yaml.safe_dump(doc, sort_keys=False))


@SETTINGS
@given(data=st.data())
def test_mutated_starter_text(starter_text: str, data: st.DataObject) -> None:
    lines = starter_text.splitlines()
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(lines) - 1))
        action = data.draw(st.sampled_from(["delete", "duplicate", "indent", "dedent", "char"]))
        if action == "delete":
            del lines[i]
        elif action == "duplicate":
            lines.insert(i, lines[i])
        elif action == "indent":
            lines[i] = "  " + lines[i]
        elif action == "dedent":
            lines[i] = lines[i][2:]
        else:
            line = lines[i]
            j = data.draw(st.integers(0, len(line)))
            junk = data.draw(st.sampled_from([*":-[]{}&*!|>'\"%@`#,?$ \t", "${X}", "x"]))
            lines[i] = line[:j] + junk + line[j:]
        if not lines:
            break
    load_or_plan_error("\n".join(lines) + "\n")


@pytest.mark.parametrize(
    "text",
    [
        "version: 1\nname: x\ntiers: {a: {rto: 1e400s, rpo: 1h}}\n",
        "version: 1\nname: x\ntiers: {a: {rto: .inf, rpo: .nan}}\n",
        "a: " + "[" * 5000 + "]" * 5000 + "\n",
        "a: 1" + "0" * 5000 + "\n",
        "\ufeffversion: 1\n",
        "version: 1\x00\n",
    ],
    ids=["huge-duration", "inf-nan", "deep-nesting", "huge-int", "bom", "nul"],
)
def test_edge_inputs(text: str) -> None:
    with pytest.raises(PlanError):
        parse_plan(text, file="edge.yaml", env={})
