"""drkit's optional extras (``pip install 'drkit[gateway]'``), and the error a command
gives when the extra it needs is not installed: one line naming it, never a traceback.

The core install (no extras) runs every command that reads or writes repositories and
drkit's state; the gateway, the simulator and the serving drills need ``gateway``; a
vector store needs its engine's extra; object storage needs ``s3``.
"""

from __future__ import annotations

import importlib.util

from drkit.errors import UsageError

#: top-level module -> the extra that installs it (pyproject.toml's optional dependencies)
EXTRA_OF_MODULE: dict[str, str] = {
    "starlette": "gateway",
    "uvicorn": "gateway",
    "prometheus_client": "gateway",
    "redis": "gateway",
    "orjson": "gateway",
    "aiohttp": "gateway",
    "obstore": "s3",
    "qdrant_client": "qdrant",
    "chromadb": "chroma",
    "psycopg": "pgvector",
    "pgserver": "pgvector",
    "lancedb": "lancedb",
    "pymilvus": "milvus",
    "milvus_lite": "milvus",
    "jinja2": "status",
    "scipy": "evals",
    "mlflow": "mlflow",
    "openlineage": "lineage",
}


class MissingExtra(UsageError):
    """A command needs an optional extra that is not installed (exit 2)."""

    def __init__(self, extra: str, module: str, what: str | None = None) -> None:
        needs = what or "this command"
        super().__init__(
            f"{needs} needs drkit's {extra!r} extra (module {module!r} is not installed)",
            hint=f"pip install 'drkit[{extra}]'",
        )
        self.extra = extra
        self.module = module


def from_import_error(exc: ModuleNotFoundError) -> MissingExtra | None:
    """The extra behind a failed import, or ``None`` when no extra provides the module."""
    top = (exc.name or "").split(".")[0]
    extra = EXTRA_OF_MODULE.get(top)
    return MissingExtra(extra, top) if extra else None


def require(extra: str, what: str | None = None) -> None:
    """Raise :class:`MissingExtra` unless every module of ``extra`` can be imported."""
    for module, owner in EXTRA_OF_MODULE.items():
        if owner == extra and importlib.util.find_spec(module) is None:
            raise MissingExtra(extra, module, what)
