"""How a command reaches a repository: URL, password, opened store, opened repository.

The one chain from "a URL or the plan's primary" to an open :class:`Repository`, used by
the CLI's repository commands (``repo``, ``backup``, ``snapshot``, ``copy``, ...). The
repository is the given URL, path or name of a repository of the plan, else the plan's
primary. The password comes from
``DRKIT_PASSWORD`` or ``DRKIT_PASSWORD_FILE``, else the plan's repository entry
(:func:`drkit.plan.secrets.repository_password`), never from the command line.

This module loads only the repository stack (no drills, no gateway), so that the
repository commands work without the gateway extra and start fast.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from drkit.errors import InputError, SecretMissing, UsageError

if TYPE_CHECKING:  # the repository stack loads when a command runs, not at CLI start-up
    from drkit.connectors.objectstore.base import ObjectStore
    from drkit.plan.models import Plan
    from drkit.plan.models import Repository as RepoModel
    from drkit.repository import KdfParams, Repository


def open_store_at(url: str) -> ObjectStore:
    """The object store at ``url``, through the scheme registry (plain paths are local)."""
    from drkit.connectors.objectstore.registry import open_store

    return open_store(url)


def load_plan_if_any(plan: Path) -> Plan | None:
    """The plan at ``plan``, or None when there is no such file (commands work without one)."""
    if not plan.exists():
        return None
    from drkit.plan.loader import load_plan

    return load_plan(plan)


def _explicit_password(env_var: str, file_var: str) -> str | None:
    if os.environ.get(env_var):
        return os.environ[env_var]
    if os.environ.get(file_var):
        path = Path(os.environ[file_var])
        try:
            return path.read_text().rstrip("\r\n")
        except OSError as exc:
            raise InputError(f"{file_var}: cannot read {path}: {exc.strerror}") from exc
    return None


def password_from(
    env_var: str,
    file_var: str,
    loaded: Plan | None = None,
    plan_repo: RepoModel | None = None,
) -> str:
    """``env_var`` / ``file_var``, else the plan repository's own source (the workspace's)."""
    password = _explicit_password(env_var, file_var)
    if password is not None:
        return password
    if plan_repo is not None and loaded is not None:
        from drkit.plan.secrets import repository_password

        return repository_password(loaded, plan_repo)
    raise SecretMissing(
        f"no repository password: set {env_var} or {file_var}",
        hint=f"export {env_var}=... (passwords are never taken from the command line)",
    )


def other_password(prefix: str) -> str:
    """``DRKIT_<prefix>_PASSWORD`` / ``..._FILE`` (another repository's), else DRKIT_PASSWORD."""
    try:
        return password_from(f"DRKIT_{prefix}_PASSWORD", f"DRKIT_{prefix}_PASSWORD_FILE")
    except SecretMissing:
        return password_from("DRKIT_PASSWORD", "DRKIT_PASSWORD_FILE")


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def _same_location(a: str, b: str) -> bool:
    def norm(u: str) -> str:
        if "://" in u and not u.startswith("file://"):
            return u.rstrip("/")
        return os.path.abspath(u.removeprefix("file://"))

    return norm(a) == norm(b)


def resolve_repository(ref: str, plan: Path) -> tuple[str, Plan | None, RepoModel | None]:
    """``ref`` as (URL, loaded plan, plan repository): a repository *name* of the plan (the
    primary or a replica) becomes its URL; a URL or path stays itself, and is matched
    against the plan's repositories (their passwords then apply). A bare word that is no
    name of the plan is a path. The plan is read only for a bare word or when present."""
    bare = bool(_NAME.match(ref))
    try:
        loaded = load_plan_if_any(plan)
    except InputError:
        if bare and not Path(ref).exists():
            raise  # the plan is needed to know what the name means
        loaded = None  # a URL needs no plan: a broken one does not block it
    if loaded is None:
        return ref, None, None
    repos = [loaded.repositories.primary, *loaded.repositories.replicas]
    for model in repos:
        if bare and model.name == ref:
            return str(model.url), loaded, model
    for model in repos:
        if _same_location(str(model.url), ref):
            return ref, loaded, model
    return ref, loaded, None


def _has_password_source(loaded: Plan, model: RepoModel) -> bool:
    return bool(
        model.password is not None
        or model.password_file
        or model.password_env
        or model.name == loaded.repositories.primary.name
    )


def repository_credentials(ref: str, plan: Path, prefix: str) -> tuple[str, str]:
    """Another repository's URL and password (``copy --to``, ``repair --from``): a plan
    repository's own password source (``password``, ``password_file``, ``password_env``)
    when ``ref`` names or locates one that has it, else ``DRKIT_<prefix>_PASSWORD`` /
    ``..._FILE``, else ``DRKIT_PASSWORD``."""
    url, loaded, model = resolve_repository(ref, plan)
    if loaded is not None and model is not None and _has_password_source(loaded, model):
        from drkit.plan.secrets import repository_password

        return url, repository_password(loaded, model)
    return url, other_password(prefix)


def credentials(repo_url: str | None, plan: Path) -> tuple[str, str]:
    """The repository URL (``repo_url`` — a URL, path, or plan repository name —, else the
    plan's primary) and its password."""
    if repo_url:
        url, loaded, plan_repo = resolve_repository(repo_url, plan)
        if (
            loaded is not None
            and plan_repo is not None
            and plan_repo.name != loaded.repositories.primary.name
        ):
            # a replica by name: its own password source first (the primary's DRKIT_PASSWORD
            # is another repository's); without one, the explicit variables as for a URL
            if _has_password_source(loaded, plan_repo):
                from drkit.plan.secrets import repository_password

                return url, repository_password(loaded, plan_repo)
            plan_repo = None
        return url, password_from("DRKIT_PASSWORD", "DRKIT_PASSWORD_FILE", loaded, plan_repo)
    loaded = load_plan_if_any(plan)
    if loaded is None:
        raise UsageError(
            "no repository given",
            hint="pass --repo URL, set DRKIT_REPO, or run in a directory with drkit.yaml",
        )
    primary = loaded.repositories.primary
    return str(primary.url), password_from("DRKIT_PASSWORD", "DRKIT_PASSWORD_FILE", loaded, primary)


def kdf_params() -> KdfParams:
    # DRKIT_KDF=fast skips the memory-hard cost, honoured only inside a pytest run so that
    # a stray environment variable can never weaken real keys
    from drkit.repository import KdfParams

    fast = os.environ.get("DRKIT_KDF") == "fast" and "PYTEST_CURRENT_TEST" in os.environ
    return KdfParams.fast() if fast else KdfParams()


@contextlib.contextmanager
def opened_repository(repo_url: str | None, plan: Path) -> Iterator[Repository]:
    """The repository of ``repo_url`` (else the plan's primary), closed after use."""
    url, password = credentials(repo_url, plan)
    with repository_at(url, password) as repo:
        yield repo


@contextlib.contextmanager
def repository_at(url: str, password: str, *, init: bool = False) -> Iterator[Repository]:
    """Open the repository at ``url`` (create it first if ``init`` and missing); close it after."""
    from drkit.repository import Repository

    store = open_store_at(url)
    if init and not _exists_or_create(store):  # also finishes an interrupted --init
        repo = Repository.init(store, password, kdf=kdf_params())
    else:
        repo = Repository.open(store, password)
    try:
        yield repo
    finally:
        repo.close()


def _exists_or_create(store: ObjectStore) -> bool:
    """Whether ``config`` exists; a missing bucket is created when the store can."""
    from drkit.errors import ContainerMissing

    try:
        if store.exists("config"):
            return True
        next(iter(store.list("keys/")), None)  # a HEAD cannot tell a missing bucket
        return False
    except ContainerMissing:
        if not store.create_container():
            raise
        return False
