"""The composition root: plan -> repositories, drill stack, gateway config, state store."""

from drkit.workspace.workspace import Workspace

__all__ = ["Workspace"]
