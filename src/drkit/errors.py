"""The one error tree of drkit.

Every error drkit raises on purpose is a :class:`DrkitError`. Third-party errors are
translated at the boundary where they enter (``raise StoreUnreachable(...) from exc``),
so callers above a connector never see ``botocore``, ``httpx`` or ``psycopg`` types.

Each error carries:

- ``hint``: what the user can do next; the CLI prints it as ``Try: <hint>``;
- ``exit_code``: 2 for bad input (the user can fix the command or the file),
  1 for everything else (the operation ran and failed);
- ``status``: the HTTP status for errors that reach a web client.

Only :class:`Transient` errors are retried (``Retrying(store)`` and the gateway's
failover read ``retryable``); everything else fails fast.

::

    DrkitError                         base: message, hint, exit_code=1, status=500
    ├── InputError                     exit 2: the user's input is wrong
    │   ├── PlanError                  a plan file problem: file, line, field
    │   ├── UsageError                 bad command-line arguments or options
    │   ├── SecretMissing              an environment variable the plan needs is unset
    │   └── IncidentNotFound           404: no incident with that id
    ├── StorageError                   an object store failed
    │   ├── ObjectNotFound             get/stat of a key that does not exist
    │   ├── ObjectExists               put(if_absent=True) of a key that exists
    │   ├── StoreUnreachable           endpoint down or refusing (after retries)
    │   ├── StorageFull                no space left
    │   ├── ContainerMissing           the bucket / container does not exist
    │   ├── StoragePermissionDenied    credentials or ACLs refuse the operation
    │   └── TransientStorageError      a retryable hiccup (timeout, 5xx, throttling)
    ├── RepositoryError                the backup repository
    │   ├── RepositoryNotFound         exit 2: no repository at that URL
    │   ├── RepositoryExists           exit 2: repo init on an existing repository
    │   ├── WrongPassword              exit 2: no key in the repository opens with it
    │   ├── RepositoryLocked           an exclusive lock is held by another process
    │   ├── CorruptObject              content does not match its hash / fails to decrypt
    │   ├── SnapshotNotFound           exit 2: no snapshot matches the given id or prefix
    │   └── UnsafeRestorePath          exit 2: a path would escape the restore target
    ├── VectorStoreError               a vector engine failed
    │   ├── EngineUnreachable          the engine cannot be reached
    │   │   └── EngineLocked           an embedded engine's files are held by another process
    │   ├── EnginePermissionDenied     the engine's files or database refuse drkit's writes
    │   ├── CollectionNotFound         exit 2
    │   ├── CollectionExists           exit 2
    │   ├── IncompatibleTarget         exit 2: config cannot be mapped to the target engine
    │   └── NothingToBackUp            a store to back up lacks the collections it should hold
    ├── GatewayError                   the LLM gateway (carries an HTTP status)
    │   ├── TranslationError           400: a request that cannot be translated faithfully
    │   ├── AuthenticationError        401: missing or wrong client API key
    │   ├── RouteNotFound              404: no route with that model name
    │   ├── UpstreamError              one upstream attempt failed (status, retryable)
    │   ├── AllTargetsFailed           502/503: every target failed or is ejected
    │   └── LiveFaultRefused           400/401/403/404/409: a live drill fault not installed
    ├── MlflowError                    an MLflow tracking server or store failed
    │   ├── MlflowPermissionDenied     exit 2: the server refuses drkit's credentials
    │   └── MlflowTargetNotEmpty       exit 2: a restore target holds a model of the snapshot
    ├── DrillError                     a drill could not run (not: a drill that failed)
    └── CheckFailed                    exit 1: a check, lint or drill found problems
"""

from __future__ import annotations


class DrkitError(Exception):
    """Base of every error drkit raises on purpose."""

    exit_code: int = 1
    status: int = 500
    retryable: bool = False
    default_hint: str | None = None

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint if hint is not None else self.default_hint

    def __str__(self) -> str:
        return self.message


# --- bad input -------------------------------------------------------------------------


class InputError(DrkitError):
    """The user's input is wrong; fixing the command or the file fixes it."""

    exit_code = 2
    status = 400


class PlanError(InputError):
    """A plan file problem, located at ``file:line`` and a dotted ``field`` path."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        field: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.file = file
        self.line = line
        self.field = field
        where = file or "<plan>"
        if line is not None:
            where = f"{where}:{line}"
        prefix = f"{where}: {field}: " if field else f"{where}: "
        super().__init__(prefix + message, hint=hint)
        self.reason = message


class IncidentNotFound(InputError):
    """No incident with that id (``drkit incident``, the status page)."""

    status = 404


class UsageError(InputError):
    """Bad command-line arguments or options."""


class SecretMissing(InputError):
    """An environment variable that the plan or a command needs is not set."""


# --- object stores ---------------------------------------------------------------------


class StorageError(DrkitError):
    """An object store operation failed."""


class ObjectNotFound(StorageError):
    """``get``/``stat`` of a key that does not exist."""


class ObjectExists(StorageError):
    """``put(if_absent=True)`` of a key that already exists."""


class StoreUnreachable(StorageError):
    """The store's endpoint is down or refusing connections (after retries)."""

    default_hint = "check the URL and that the storage endpoint is up and reachable"


class ContainerMissing(StorageError):
    """The bucket (or container) a store lives in does not exist."""

    default_hint = "create the bucket (or container) first, or check the URL"


class StorageFull(StorageError):
    """No space left on the device or quota exceeded."""

    default_hint = "free space on the target or point the repository elsewhere"


class StoragePermissionDenied(StorageError):
    """Credentials or access rules refuse the operation."""

    default_hint = "check the credentials in the environment and the bucket/directory permissions"


class TransientStorageError(StorageError):
    """A retryable hiccup: a timeout, a 5xx, throttling."""

    retryable = True


# --- repository ------------------------------------------------------------------------


class RepositoryError(DrkitError):
    """The backup repository."""


class RepositoryNotFound(RepositoryError):
    exit_code = 2
    default_hint = "run `drkit repo init --repo URL` first, or check --repo / DRKIT_REPO"


class RepositoryExists(RepositoryError):
    exit_code = 2
    default_hint = "use the existing repository, or choose another --repo"


class WrongPassword(RepositoryError):
    exit_code = 2
    default_hint = "check DRKIT_PASSWORD or DRKIT_PASSWORD_FILE"


class RepositoryLocked(RepositoryError):
    default_hint = (
        "wait for the other drkit process, or remove a stale lock with `drkit repo unlock`"
    )


class CorruptObject(RepositoryError):
    """Stored content does not match its hash or fails authentication."""

    default_hint = "run `drkit check --read-data`, then `drkit repair` from a replica"

    def __init__(self, message: str, *, object_id: str | None = None, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.object_id = object_id


class SnapshotNotFound(RepositoryError):
    exit_code = 2
    default_hint = "list snapshots with `drkit snapshots`"


class UnsafeRestorePath(RepositoryError):
    exit_code = 2


# --- vector stores ---------------------------------------------------------------------


class VectorStoreError(DrkitError):
    """A vector engine failed."""


class EngineUnreachable(VectorStoreError):
    default_hint = "check the engine URL and that the engine is running"


class EngineLocked(EngineUnreachable):
    """An embedded engine's path is locked by another process (Qdrant local, Milvus Lite)."""

    default_hint = (
        "stop the process that holds it, or go through the engine's server "
        "(qdrant+http://, milvus:// with `milvus-lite server`)"
    )


class EnginePermissionDenied(VectorStoreError):
    """The operating system or the engine's database refused access to its files."""

    default_hint = "give the user drkit runs as write access to the engine's path"


class CollectionNotFound(VectorStoreError):
    exit_code = 2


class CollectionExists(VectorStoreError):
    exit_code = 2
    default_hint = "restore under another name with --collection, or drop the existing one"


class IncompatibleTarget(VectorStoreError):
    """A collection config that cannot be mapped onto the target engine."""

    exit_code = 2


class NothingToBackUp(VectorStoreError):
    """A store to back up has no collections, or lacks one the plan names (exit 1)."""

    default_hint = (
        "check the store and the plan's collections:, or set allow_empty: true on the "
        "vector store if an empty store is expected"
    )


# --- gateway ---------------------------------------------------------------------------


class GatewayError(DrkitError):
    """The LLM gateway; ``status`` is the HTTP status returned to the client."""

    status = 502


class TranslationError(GatewayError):
    """A request that cannot be translated faithfully between dialects."""

    status = 400
    #: the refused request field (``logprobs``, ``messages[0].content[1]``) and why, when
    #: a translator refused one (``drkit.gateway.translate.checks.refuse``)
    field: str | None = None
    reason: str | None = None


class AuthenticationError(GatewayError):
    """A client without a valid gateway key."""

    status = 401
    default_hint = (
        "send the gateway key as Authorization: Bearer <key> (OpenAI SDK) or x-api-key "
        "(Anthropic SDK)"
    )


class RouteNotFound(GatewayError):
    status = 404


class UpstreamError(GatewayError):
    """One upstream attempt failed; ``retryable`` says whether failover may try the next."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 502,
        retryable: bool = True,
        reason: str = "error",
        hint: str | None = None,
        retry_after: float | None = None,
        body: bytes | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.status = status
        self.retryable = retryable
        self.reason = reason
        #: seconds the upstream asked us to wait (429 Retry-After), if it said
        self.retry_after = retry_after
        #: the upstream's error body as received (for 4xx passed back to the client)
        self.body = body


class AllTargetsFailed(GatewayError):
    """No target of a route produced an answer; 429 with ``retry_after`` (seconds) when
    every target asked to slow down."""

    status = 503

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        status: int = 503,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.status = status
        self.retry_after = retry_after


class LiveFaultRefused(GatewayError):
    """The gateway's admin API refused a live drill fault (bad input, wrong admin key,
    unknown route or target, a conflict); ``status`` is the HTTP status it answered."""

    def __init__(self, message: str, *, status: int = 400, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status


# --- drills and checks -----------------------------------------------------------------


# --- MLflow --------------------------------------------------------------------------


class MlflowError(DrkitError):
    """An MLflow tracking server or store failed: unreachable, or an answer drkit cannot use."""

    default_hint = (
        "check the tracking URI and that the MLflow server is up (MLFLOW_HTTP_REQUEST_"
        "MAX_RETRIES and MLFLOW_HTTP_REQUEST_TIMEOUT govern how long drkit waits)"
    )


class MlflowPermissionDenied(MlflowError):
    """The MLflow server refuses drkit's credentials (exit 2: fix the credentials)."""

    exit_code = 2
    default_hint = (
        "set MLflow's own credentials: MLFLOW_TRACKING_TOKEN, or MLFLOW_TRACKING_USERNAME "
        "and MLFLOW_TRACKING_PASSWORD"
    )


class MlflowTargetNotEmpty(MlflowError):
    """A registry restore target already holds a registered model of the snapshot (exit 2)."""

    exit_code = 2


class DrillError(DrkitError):
    """A drill could not run at all (a drill that misses its targets is CheckFailed)."""


class CheckFailed(DrkitError):
    """A check, lint or drill ran and found problems."""

    exit_code = 1
