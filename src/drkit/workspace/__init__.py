"""The composition root: plan -> repositories, drill stack, gateway config, state store."""

from drkit.workspace.workspace import GameDay, Workspace, run_gameday

__all__ = ["GameDay", "Workspace", "run_gameday"]
