"""``drkit cost --html FILE``: the cost report (and a what-if) as one HTML page (jinja2,
autoescaped; the ``status`` extra)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from drkit.cost.model import amount
from drkit.types import format_duration

_TEMPLATES = Path(__file__).parent / "templates"


def render(report: dict[str, Any], what_if: dict[str, Any] | None = None) -> str:
    """The page for ``report`` (:meth:`CostReport.to_json`) and ``what_if``
    (:func:`drkit.cost.whatif.what_if`)."""
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    env = Environment(
        loader=FileSystemLoader(_TEMPLATES),
        autoescape=select_autoescape(["html", "j2"], default=True),
        undefined=StrictUndefined,
    )
    cur = report["currency"]

    def money(x: float | None) -> str:
        return "unknown" if x is None else f"{amount(x)} {cur}"

    def signed(x: float | None) -> str:
        return "unknown" if x is None else f"{amount(x, '+')} {cur}"

    def dur(s: float | None) -> str:
        return "-" if s is None else format_duration(s)

    def cls(source: str) -> str:
        return {"measured": "measured", "plan estimate": "estimate"}.get(source, "unknown")

    page = env.get_template("cost.html.j2")
    return page.render(r=report, w=what_if, money=money, signed=signed, dur=dur, cls=cls)
