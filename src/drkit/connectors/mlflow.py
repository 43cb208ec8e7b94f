"""An MLflow model registry through MLflow's own client (``MlflowClient``, the ``mlflow``
extra), at any tracking URI: ``http(s)://`` for an ``mlflow server``, ``sqlite:///`` or
another database URL for MLflow's SQL store.

Reading: :func:`read_registry` (registered models, their versions, aliases and tags as
plain JSON data) and :func:`download_version` (a version's artifacts). Writing: the calls
:mod:`drkit.workspace.mlflow_registry` makes through the client from :func:`open_client`.
Every MLflow or connection error is translated here (:func:`translate`): an unreachable
server is :class:`MlflowError` (exit 1), refused credentials
:class:`MlflowPermissionDenied` (exit 2); no MLflow type leaves this module in an error.
Credentials are MLflow's own environment variables (``MLFLOW_TRACKING_TOKEN``,
``MLFLOW_TRACKING_USERNAME``/``_PASSWORD``); a password in the URI never appears in a
message (:func:`public_uri`).
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from drkit.errors import DrkitError, MlflowError, MlflowPermissionDenied

#: the schemes of the tracking URIs drkit accepts as an MLflow registry
SCHEMES = ("http", "https", "sqlite", "postgresql", "mysql", "mssql", "databricks")
_DENIED = ("UNAUTHENTICATED", "PERMISSION_DENIED", "401", "403")
_UNREACHABLE = ("Max retries exceeded", "Connection refused", "Failed to establish")
_USERINFO = re.compile(r"//[^/@\s]+@")


def is_mlflow_uri(uri: str) -> bool:
    """``uri`` names an MLflow tracking server or store (by its scheme)."""
    scheme = urlsplit(uri).scheme.split("+", 1)[0].lower()
    return "://" in uri and scheme in SCHEMES


def public_uri(uri: str) -> str:
    """``uri`` without a user or password and without its query string."""
    bare = uri.split("?", 1)[0].split("#", 1)[0]
    parts = urlsplit(bare)
    if "@" not in parts.netloc:
        return bare  # sqlite:////abs/path keeps its slashes
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def open_client(uri: str, what: str = "an MLflow registry backup") -> Any:
    """An ``MlflowClient`` for the tracking and registry URI ``uri`` (no request yet)."""
    try:
        from mlflow.tracking import MlflowClient
    except ModuleNotFoundError as exc:
        from drkit.extras import MissingExtra

        raise MissingExtra("mlflow", "mlflow", what) from exc
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def translate(exc: BaseException, uri: str, doing: str) -> DrkitError:
    """The drkit error for an exception MLflow raised while ``doing`` at ``uri``."""
    if isinstance(exc, DrkitError):
        return exc
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    text = _USERINFO.sub("//", text)  # MLflow's messages repeat the URI, password and all
    if any(m in text for m in _UNREACHABLE):
        return MlflowError(
            f"cannot {doing} at MLflow {public_uri(uri)}: the server is not reachable"
        )
    code = str(getattr(exc, "error_code", ""))
    where = public_uri(uri)
    if code in _DENIED or any(f"status code {c}" in text for c in ("401", "403")):
        return MlflowPermissionDenied(f"MLflow at {where} refused {doing}: {text[:200]}")
    return MlflowError(f"cannot {doing} at MLflow {where}: {type(exc).__name__}: {text[:200]}")


@contextlib.contextmanager
def translated(uri: str, doing: str) -> Iterator[None]:
    """Run the block, translating whatever MLflow raises (:func:`translate`)."""
    try:
        yield
    except DrkitError:
        raise
    except Exception as exc:  # MlflowException, requests' errors, SQLAlchemy's: the boundary
        raise translate(exc, uri, doing) from exc


@contextlib.contextmanager
def quiet_artifacts() -> Iterator[None]:
    """No tqdm bar of MLflow's on stderr while artifacts move (drkit prints its own lines)."""
    old = os.environ.get("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR")
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", None)
        else:
            os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = old


def all_models(client: Any) -> Iterator[Any]:
    """Every registered model, page by page."""
    token = None
    while True:
        page = client.search_registered_models(page_token=token)
        yield from page
        token = page.token
        if not token:
            return


def _aliases(rm: Any) -> dict[str, str]:
    aliases = rm.aliases or {}
    if isinstance(aliases, list):  # older clients: [RegisteredModelAlias(alias, version)]
        aliases = {a.alias: a.version for a in aliases}
    return {str(k): str(v) for k, v in sorted(aliases.items())}


def _tags(tags: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in sorted((tags or {}).items())}


def _versions(client: Any, name: str) -> list[Any]:
    out: list[Any] = []
    token = None
    escaped = name.replace("'", "\\'")
    while True:
        page = client.search_model_versions(f"name='{escaped}'", page_token=token)
        out.extend(page)
        token = page.token
        if not token:
            return sorted(out, key=lambda v: int(str(v.version)))


def version_doc(mv: Any) -> dict[str, Any]:
    """One model version as plain JSON data (what a registry snapshot keeps of it)."""
    return {
        "version": int(str(mv.version)),
        "source": str(mv.source or ""),
        "run_id": str(mv.run_id or "") or None,
        "run_link": str(mv.run_link or "") or None,
        "model_id": str(getattr(mv, "model_id", None) or "") or None,
        "description": str(mv.description or ""),
        "tags": _tags(mv.tags),
        "status": str(mv.status or "READY"),
        "stage": str(getattr(mv, "current_stage", None) or "None"),
        "created_ms": int(mv.creation_timestamp or 0),
    }


def read_registry(client: Any, uri: str, models: list[str] | None = None) -> list[dict[str, Any]]:
    """Every registered model (or those named) with its versions (oldest first), aliases,
    tags and description, as plain JSON data sorted by name; raises :class:`MlflowError`
    (exit 1) when MLflow cannot be read."""
    with translated(uri, "list the registered models"):
        found = sorted(all_models(client), key=lambda rm: str(rm.name))
    out = []
    for rm in found:
        if models and rm.name not in models:
            continue
        with translated(uri, f"list the versions of {rm.name!r}"):
            versions = _versions(client, str(rm.name))
        out.append(
            {
                "name": str(rm.name),
                "description": str(rm.description or ""),
                "tags": _tags(rm.tags),
                "aliases": _aliases(rm),
                "created_ms": int(rm.creation_timestamp or 0),
                "versions": [version_doc(mv) for mv in versions],
            }
        )
    return out


def download_version(client: Any, uri: str, name: str, version: int, dest: Path) -> Path:
    """Download the artifacts of ``name`` version ``version`` into the empty directory
    ``dest``; the path of what was downloaded (a directory or one file) under it."""
    import mlflow.artifacts

    doing = f"download the artifacts of {name} version {version}"
    with translated(uri, doing), quiet_artifacts():
        where = client.get_model_version_download_uri(name, str(version))
        got = mlflow.artifacts.download_artifacts(
            artifact_uri=where, dst_path=str(dest), tracking_uri=uri
        )
    return Path(got)
