"""Where a plan repository's password comes from: inline, ``password_file`` or ``password_env``.

The one resolution used by the workspace (drills, game days) and the CLI alike. The
primary repository falls back to ``DRKIT_PASSWORD`` when the plan names no source.
"""

from __future__ import annotations

import os

from drkit.errors import InputError, SecretMissing
from drkit.plan.models import Plan, Repository


def repository_password(plan: Plan, repo: Repository) -> str:
    """``repo``'s password; a relative ``password_file`` is relative to the plan file."""
    if repo.password is not None:
        return str(repo.password.reveal())
    if repo.password_file:
        path = plan.resolve_path(repo.password_file)
        try:
            return path.read_text().rstrip("\r\n")
        except OSError as exc:
            raise InputError(
                f"repository {repo.name!r}: cannot read password_file {path}: {exc.strerror}",
                hint="check repositories.*.password_file in the plan",
            ) from exc
    env = repo.password_env or (
        "DRKIT_PASSWORD" if repo.name == plan.repositories.primary.name else None
    )
    if env and os.environ.get(env):
        return os.environ[env]
    raise SecretMissing(
        f"repository {repo.name!r}: no password"
        + (f" (environment variable {env} is not set)" if env else ""),
        hint=f"export {env}=..." if env else "set password_env or password_file in the plan",
    )
