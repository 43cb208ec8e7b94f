"""The YAML snippets of the serving docs load as a plan and build a gateway config."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from drkit.gateway.config import from_plan
from drkit.plan.loader import parse_plan

DOCS = Path(__file__).parents[2] / "docs"
BASE = """\
version: 1
name: doc-snippet
tiers:
  critical: {rto: 5m, rpo: 15m}
repositories:
  primary: {name: primary, url: "file:///tmp/drkit-doc-snippet", region: eu-west,
            password_env: DRKIT_PASSWORD}
"""


def snippets() -> list[tuple[str, str]]:
    out = []
    for name in ("gateway.md", "simulator.md"):
        text = (DOCS / name).read_text()
        for i, block in enumerate(re.findall(r"```yaml\n(.*?)```", text, re.S)):
            out.append((f"{name}#{i}", block))
    return out


@pytest.mark.parametrize(("where", "block"), snippets(), ids=[w for w, _ in snippets()])
def test_doc_snippet_loads(where: str, block: str) -> None:
    if block.startswith("serving:"):
        text = BASE + block
    else:
        assert block.startswith("targets:"), f"{where}: a snippet of an unknown shape"
        route = "serving:\n  routes:\n    - name: assistant\n      tier: critical\n"
        text = BASE + route + textwrap.indent(block, "      ")
    plan = parse_plan(text, file=where, env={})
    config = from_plan(plan, redis_url="redis://127.0.0.1:1/0")  # not read from env
    assert config.routes
    assert all(r.targets for r in config.routes)
