"""Eval DR: eval sets as data, runs through the serving path, history, the paired gate.

Talks to the serving path over HTTP like a client (never imports the gateway). See
docs/evals.md.
"""

from __future__ import annotations

from drkit.evals.compare import Comparison, compare
from drkit.evals.evalset import EvalSet, Example, load_eval_set
from drkit.evals.history import RunSummary, list_runs, read_rows, read_summary
from drkit.evals.runner import Endpoint, ExampleResult, run_examples
from drkit.evals.scorers import SCORERS, register

__all__ = [
    "SCORERS",
    "Comparison",
    "Endpoint",
    "EvalSet",
    "Example",
    "ExampleResult",
    "RunSummary",
    "compare",
    "list_runs",
    "load_eval_set",
    "read_rows",
    "read_summary",
    "register",
    "run_examples",
]
