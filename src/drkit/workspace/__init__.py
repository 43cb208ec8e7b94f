"""The composition root: plan -> repositories, drill stack, gateway config, state store.

``Workspace``, ``GameDay`` and ``run_gameday`` load on first use: the workspace pulls in
every layer (drills, gateway, repository), which command-line start-up must not pay for
(``drkit --help`` and ``drkit plan check`` import ``drkit.workspace.*`` submodules only).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from drkit.workspace.workspace import GameDay, Workspace, run_gameday

__all__ = ["GameDay", "Workspace", "run_gameday"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("drkit.workspace.workspace"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
