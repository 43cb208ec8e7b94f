"""Network object stores through ``obstore`` (S3, GCS, Azure): calls and error translation.

``obstore`` (Rust ``object_store``) is imported lazily, so the core of drkit works without
the ``s3`` extra. One obstore client per store object; it pools connections and is safe
to share between threads (calls release the GIL).

Error translation (obstore -> drkit), at this boundary only:

- ``FileNotFoundError`` -> :class:`ObjectNotFound` (a missing bucket -> :class:`StorageError`)
- ``AlreadyExistsError`` / ``PreconditionError`` -> :class:`ObjectExists`
- ``PermissionDeniedError`` / ``UnauthenticatedError`` -> :class:`StoragePermissionDenied`
- connect errors, DNS failures -> :class:`StoreUnreachable` (after obstore's short retries)
- timeouts, HTTP 5xx, 429/SlowDown -> :class:`TransientStorageError` (retryable)
- HTTP 507, "quota exceeded", "no space left" -> :class:`StorageFull`

Messages keep the first line of obstore's error, without response bodies, with every
known secret value replaced by ``***``.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from drkit.connectors.objectstore.base import Capabilities, ObjectInfo, ObjectStore
from drkit.connectors.objectstore.keys import check_key, check_prefix, check_range
from drkit.errors import (
    ContainerMissing,
    DrkitError,
    ObjectExists,
    ObjectNotFound,
    StorageError,
    StorageFull,
    StoragePermissionDenied,
    StoreUnreachable,
    TransientStorageError,
    UsageError,
)
from drkit.types import Secret

if TYPE_CHECKING:
    from obstore.store import ClientConfig, RetryConfig
    from obstore.store import ObjectStore as ObstoreClient

#: Probe key for ``conditional=auto`` (written and deleted once per store object).
PROBE_PREFIX = ".drkit-probe/"

_STATUS_RE = re.compile(r"status code: (\d{3})|status: (\d{3})")
_EXTRA_HINT = "install the s3 extra: pip install 'drkit[s3]'"


def import_obstore() -> Any:
    try:
        import obstore
    except ImportError as exc:
        raise UsageError("object storage URLs need the obstore package", hint=_EXTRA_HINT) from exc
    return obstore


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def client_options(
    *, allow_http: bool, timeout: float, connect_timeout: float = 5.0
) -> ClientConfig:
    # obstore's default whole-request timeout (30 s) fails large transfers; be generous.
    return {
        "allow_http": allow_http,
        "timeout": timedelta(seconds=timeout),
        "connect_timeout": timedelta(seconds=connect_timeout),
    }


def retry_config(retries: int) -> RetryConfig:
    # Few, fast retries inside obstore: an unreachable endpoint is reported in about a
    # second; longer waits belong to ``Retrying`` which sees the whole operation.
    return {
        "max_retries": retries,
        "retry_timeout": timedelta(seconds=60),
        "backoff": {
            "init_backoff": timedelta(milliseconds=100),
            "max_backoff": timedelta(seconds=2),
            "base": 2,
        },
    }


class ObstoreStore(ObjectStore):
    """Shared implementation over an obstore client; subclasses build the client."""

    _client: ObstoreClient

    def __init__(
        self,
        client: ObstoreClient,
        *,
        url: str,
        conditional: bool | None,
        secrets: tuple[str, ...] = (),
        max_concurrency: int = 16,
    ) -> None:
        self._obs = import_obstore()
        self._client = client
        self.url = url
        # Kept masked (Secret) so that no repr or debug dump of the store shows them.
        self._secrets = tuple(Secret(s) for s in secrets if s)
        self._max_concurrency = max_concurrency
        #: None = not known yet (``conditional=auto``): probed on first need.
        self._conditional = conditional
        self._probe_lock = threading.Lock()
        #: The server ignores Range headers' status rules; read ranges by streaming.
        self._ranges_broken = False

    # --- capabilities ------------------------------------------------------------------

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(
            atomic_create=self._supports_conditional(),
            max_concurrency=self._max_concurrency,
        )

    @capabilities.setter
    def capabilities(self, value: Capabilities) -> None:
        self._conditional = value.atomic_create
        self._max_concurrency = value.max_concurrency

    def _supports_conditional(self) -> bool:
        if self._conditional is None:
            with self._probe_lock:
                if self._conditional is None:
                    self._conditional = self._probe_conditional()
        return self._conditional

    def _probe_conditional(self) -> bool:
        """Does the server honour ``If-None-Match: *``? Create one key twice and see.

        Some S3-compatible servers (``rclone serve s3``) ignore the header and overwrite.
        """
        import uuid

        probe = f"{PROBE_PREFIX}{uuid.uuid4().hex}"
        errors = self._obs.exceptions
        try:
            self._obs.put(self._client, probe, b"", mode="create")
        except (errors.PermissionDeniedError, errors.UnauthenticatedError):
            return False  # read-only credentials: nothing will be created anyway
        except Exception as exc:
            raise self._translate(exc, "probing conditional writes on", probe) from exc
        try:
            self._obs.put(self._client, probe, b"", mode="create")
        except (errors.AlreadyExistsError, errors.PreconditionError):
            return True
        except errors.NotSupportedError:
            return False
        except Exception as exc:
            raise self._translate(exc, "probing conditional writes on", probe) from exc
        finally:
            with contextlib.suppress(Exception):  # best effort: an empty object
                self._obs.delete(self._client, probe)
        return False

    # --- operations --------------------------------------------------------------------

    def put(self, key: str, data: bytes, *, if_absent: bool = False) -> None:
        check_key(key)
        try:
            if if_absent and self._supports_conditional():
                self._obs.put(self._client, key, data, mode="create")
                return
            if if_absent and self._exists_raw(key):
                raise ObjectExists(f"{key} already exists in {self.url}")
            self._obs.put(self._client, key, data, max_concurrency=self._max_concurrency)
        except DrkitError:
            raise
        except Exception as exc:
            raise self._translate(exc, "writing", key) from exc

    def get(self, key: str) -> bytes:
        check_key(key)
        try:
            return bytes(self._obs.get(self._client, key).bytes())
        except Exception as exc:
            raise self._translate(exc, "reading", key) from exc

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        check_range(offset, length)
        check_key(key)
        if length == 0:
            self.stat(key)  # raises ObjectNotFound
            return b""
        if self._ranges_broken:
            return self._range_by_streaming(key, offset, length)
        try:
            return bytes(self._obs.get_range(self._client, key, start=offset, length=length))
        except Exception as exc:
            if "NotPartial" in str(exc):
                # The server answered a range request with 200 instead of 206 (rclone
                # serve s3 <= 1.75 does): obstore refuses that. Stream instead, from now on.
                self._ranges_broken = True
                return self._range_by_streaming(key, offset, length)
            if _status(exc) != 416:
                raise self._translate(exc, "reading", key) from exc
        # 416: the range starts at/after the end, or (some servers) merely reaches past
        # it. Ask for the size and serve what exists.
        size = self.stat(key).size
        if offset >= size:
            return b""
        try:
            return bytes(self._obs.get_range(self._client, key, start=offset, end=size))
        except Exception as exc:
            raise self._translate(exc, "reading", key) from exc

    def _range_by_streaming(self, key: str, offset: int, length: int) -> bytes:
        """Read the object from the start, keep ``[offset, offset + length)``, stop early."""
        parts: list[bytes] = []
        position, end = 0, offset + length
        try:
            for chunk in self._obs.get(self._client, key).stream(min_chunk_size=1 << 20):
                size = len(chunk)
                if position + size > offset:
                    parts.append(bytes(chunk[max(0, offset - position) : end - position]))
                position += size
                if position >= end:
                    break
        except Exception as exc:
            raise self._translate(exc, "reading", key) from exc
        return b"".join(parts)

    def stat(self, key: str) -> ObjectInfo:
        check_key(key)
        try:
            meta = self._obs.head(self._client, key)
        except Exception as exc:
            raise self._translate(exc, "stat of", key) from exc
        return ObjectInfo(key, int(meta["size"]))

    def _exists_raw(self, key: str) -> bool:
        try:
            self._obs.head(self._client, key)
        except FileNotFoundError:
            return False
        return True

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        check_prefix(prefix)
        # obstore lists by whole path segments; list the enclosing "directory" and filter.
        directory = prefix.rpartition("/")[0] or None
        try:
            for batch in self._obs.list(self._client, directory, chunk_size=1000):
                for meta in batch:
                    path: str = meta["path"]
                    if path.startswith(prefix) and not path.startswith(PROBE_PREFIX):
                        yield ObjectInfo(path, int(meta["size"]))
        except Exception as exc:
            if isinstance(exc, FileNotFoundError) and "NoSuchBucket" not in str(exc):
                return  # nothing under that prefix
            raise self._translate(exc, "listing", prefix or "/") from exc

    def delete(self, key: str) -> None:
        check_key(key)
        try:
            self._obs.delete(self._client, key)
        except FileNotFoundError as exc:
            if "NoSuchBucket" in str(exc):
                raise self._translate(exc, "deleting", key) from exc
        except Exception as exc:
            raise self._translate(exc, "deleting", key) from exc

    def close(self) -> None:
        self.__dict__.pop("_client", None)

    # --- errors ------------------------------------------------------------------------

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret.reveal(), "***")
        return text

    def _translate(self, exc: BaseException, what: str, key: str) -> StorageError:
        errors = self._obs.exceptions
        raw = str(exc)
        message = f"{what} {key} in {self.url}: {self.redact(_summary(raw))}"
        status = _status(exc)
        if "NoSuchBucket" in raw or "ContainerNotFound" in raw:
            return ContainerMissing(f"{what} {key} in {self.url}: the bucket does not exist")
        if isinstance(exc, FileNotFoundError):
            return ObjectNotFound(f"{key} not found in {self.url}")
        if isinstance(exc, errors.AlreadyExistsError | errors.PreconditionError):
            return ObjectExists(f"{key} already exists in {self.url}")
        if isinstance(exc, errors.PermissionDeniedError | errors.UnauthenticatedError):
            return StoragePermissionDenied(message)
        if isinstance(exc, errors.NotSupportedError):
            return StorageError(message)
        lowered = raw.lower()
        if status == 507 or "quotaexceeded" in lowered or "no space left" in lowered:
            return StorageFull(message)
        if status in (401, 403):
            return StoragePermissionDenied(message)
        if "kind: connect" in lowered or "dns error" in lowered or "tcp connect" in lowered:
            return StoreUnreachable(message)
        if (
            (status is not None and (status >= 500 or status in (408, 429)))
            or "timeout" in lowered
            or "timed out" in lowered
            or "slowdown" in lowered
            or "connection reset" in lowered
            or "kind: body" in lowered
            or "kind: request" in lowered
        ):
            return TransientStorageError(message)
        return StorageError(message)


def _status(exc: BaseException) -> int | None:
    match = _STATUS_RE.search(str(exc))
    if match is None:
        return None
    return int(match.group(1) or match.group(2))


def _summary(raw: str) -> str:
    """obstore's first line, without the XML body and the Debug dump that follow."""
    first = raw.split("\n", 1)[0]
    first = first.split("<?xml", 1)[0].rstrip(": ")
    return first if len(first) <= 300 else first[:297] + "..."


# --- URL parsing shared by the network stores ------------------------------------------


class ParsedURL:
    """``scheme://container/prefix?k=v``: validated parts of a remote store URL."""

    def __init__(self, url: str, scheme: str, allowed: frozenset[str]) -> None:
        from urllib.parse import parse_qsl, unquote, urlsplit

        example = f"{scheme}://BUCKET/PREFIX"
        parts = urlsplit(url)
        if parts.scheme != scheme:
            raise UsageError(f"not a {scheme}:// URL: {url!r}", hint=f"use {example}")
        if "@" in parts.netloc:
            # Never echo the URL here: it holds a secret.
            raise UsageError(
                f"credentials in a {scheme}:// URL are not allowed",
                hint="remove 'user:secret@' from the URL and set the credentials in the "
                "environment (see docs/storage.md)",
            )
        if not parts.netloc:
            raise UsageError(f"{url!r} names no bucket", hint=f"use {example}")
        if parts.fragment:
            raise UsageError(f"{url!r} has a '#' fragment", hint="drop the '#...' part")
        self.container = parts.netloc
        self.prefix = unquote(parts.path).strip("/")
        if self.prefix:
            check_prefix(self.prefix + "/")
        self.options: dict[str, str] = {}
        for name, value in parse_qsl(parts.query, keep_blank_values=True, strict_parsing=False):
            if name not in allowed:
                raise UsageError(
                    f"unknown option {name!r} in a {scheme}:// URL",
                    hint=f"accepted options: {', '.join(sorted(allowed))}",
                )
            if name in self.options:
                raise UsageError(f"option {name!r} given twice in a {scheme}:// URL")
            self.options[name] = value

    def flag(self, name: str) -> bool | None:
        """A boolean option: true/false/1/0/yes/no; None when absent or ``auto``."""
        value = self.options.get(name)
        if value is None or value.lower() == "auto":
            return None
        lowered = value.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise UsageError(f"option {name}={value!r} is not a boolean", hint="use true or false")

    def number(self, name: str, default: int) -> int:
        value = self.options.get(name)
        if value is None:
            return default
        if not value.isdigit():
            raise UsageError(f"option {name}={value!r} is not a whole number")
        return int(value)

    def duration(self, name: str, default: float) -> float:
        from drkit.types import parse_duration

        value = self.options.get(name)
        if value is None:
            return default
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise UsageError(f"option {name}: {exc}") from None

    def base(self, scheme: str) -> str:
        return f"{scheme}://{self.container}/{self.prefix}".rstrip("/")
