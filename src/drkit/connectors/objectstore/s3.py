"""S3 and S3-compatible storage (AWS, MinIO, Ceph, R2, moto, ``rclone serve s3``).

URL: ``s3://BUCKET[/PREFIX][?endpoint=URL&region=R&...]``. Options:

- ``endpoint``: an S3-compatible server (default: AWS, or ``AWS_ENDPOINT_URL_S3`` /
  ``AWS_ENDPOINT_URL``). Plain ``http://`` is allowed for loopback hosts; elsewhere it
  needs ``allow_http=true`` (the data then travels unencrypted).
- ``region``: default ``AWS_REGION`` / ``AWS_DEFAULT_REGION``, else ``us-east-1``.
- ``conditional``: does the server honour ``If-None-Match: *`` (atomic create)?
  ``auto`` (default) probes once with a throw-away key; ``true``/``false`` skip the probe.
- ``retries`` (default 3), ``timeout`` (per request, default ``10m``).
- ``anonymous=true``: unsigned requests (public buckets, servers without auth).

Credentials come from the environment, never from the URL: ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY`` and optionally ``AWS_SESSION_TOKEN``. With AWS itself and no
keys set, obstore's default chain (instance/container roles) applies.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import quote, urlsplit

from drkit.connectors.objectstore.remote import (
    ObstoreStore,
    ParsedURL,
    client_options,
    import_obstore,
    is_loopback,
    retry_config,
)
from drkit.errors import SecretMissing, StorageError, UsageError
from drkit.types import Secret

OPTIONS = frozenset(
    {"endpoint", "region", "allow_http", "conditional", "retries", "timeout", "anonymous"}
)


def _reveal(value: str | Secret | None) -> str | None:
    return value.reveal() if isinstance(value, Secret) else value


class S3Store(ObstoreStore):
    def __init__(
        self,
        bucket: str,
        *,
        prefix: str = "",
        endpoint: str | None = None,
        region: str | None = None,
        access_key_id: str | Secret | None = None,
        secret_access_key: str | Secret | None = None,
        session_token: str | Secret | None = None,
        allow_http: bool | None = None,
        conditional: bool | None = None,
        anonymous: bool = False,
        retries: int = 3,
        timeout: float = 600.0,
    ) -> None:
        obstore = import_obstore()
        endpoint = (
            endpoint or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        )
        region = (
            region
            or os.environ.get("AWS_REGION")
            or os.environ.get("AWS_DEFAULT_REGION")
            or "us-east-1"
        )
        http = _check_endpoint(endpoint, allow_http)
        key_id = _reveal(access_key_id)
        secret = _reveal(secret_access_key)
        token = _reveal(session_token)
        if key_id is None and secret is None:
            key_id = os.environ.get("AWS_ACCESS_KEY_ID")
            secret = os.environ.get("AWS_SECRET_ACCESS_KEY")
            token = token or os.environ.get("AWS_SESSION_TOKEN")
        config: dict[str, object] = {"region": region}
        if endpoint:
            config["endpoint"] = endpoint
        if anonymous:
            config["skip_signature"] = True
        elif key_id and secret:
            config["access_key_id"] = key_id
            config["secret_access_key"] = secret
            if token:
                config["token"] = token
        elif key_id or secret or endpoint:
            # With a custom endpoint there is no instance role to fall back on.
            missing = "AWS_SECRET_ACCESS_KEY" if key_id else "AWS_ACCESS_KEY_ID"
            raise SecretMissing(
                f"{missing} is not set for s3://{bucket}",
                hint="export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
                "(or add anonymous=true to the URL for a public bucket)",
            )
        client = obstore.store.S3Store(
            bucket,
            prefix=prefix or None,
            config=config,
            client_options=client_options(allow_http=http, timeout=timeout),
            retry_config=retry_config(retries),
        )
        self.bucket = bucket
        self.prefix = prefix
        self._bucket_client: Callable[[], Any] = lambda: obstore.store.S3Store(
            bucket, config=config, client_options=client_options(allow_http=http, timeout=60)
        )
        self._region = region
        url = f"s3://{bucket}/{prefix}".rstrip("/")
        query = []
        if endpoint:
            query.append(f"endpoint={quote(endpoint, safe=':/')}")
        query.append(f"region={region}")
        if conditional is not None:
            query.append(f"conditional={'true' if conditional else 'false'}")
        super().__init__(
            client,
            url=f"{url}?{'&'.join(query)}",
            conditional=conditional,
            secrets=tuple(s for s in (secret, token) if s),
        )

    def create_container(self) -> bool:
        return _create_bucket(self)

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        access_key_id: str | Secret | None = None,
        secret_access_key: str | Secret | None = None,
        session_token: str | Secret | None = None,
    ) -> S3Store:
        """Open ``s3://BUCKET/PREFIX?options``; keys from the arguments, else the environment."""
        parsed = ParsedURL(url, "s3", OPTIONS)
        return cls(
            parsed.container,
            prefix=parsed.prefix,
            endpoint=parsed.options.get("endpoint") or None,
            region=parsed.options.get("region") or None,
            access_key_id=access_key_id,
            secret_access_key=secret_access_key,
            session_token=session_token,
            allow_http=parsed.flag("allow_http"),
            conditional=parsed.flag("conditional"),
            anonymous=bool(parsed.flag("anonymous")),
            retries=parsed.number("retries", 3),
            timeout=parsed.duration("timeout", 600.0),
        )


def _create_bucket(store: S3Store) -> bool:
    """CreateBucket through a presigned PUT on the bucket's URL (obstore signs it)."""
    obstore = import_obstore()
    url = obstore.sign(store._bucket_client(), "PUT", "", timedelta(minutes=5))
    body = b""
    if store._region != "us-east-1":
        body = (
            "<CreateBucketConfiguration><LocationConstraint>"
            f"{store._region}</LocationConstraint></CreateBucketConfiguration>"
        ).encode()
    request = urllib.request.Request(url, data=body, method="PUT")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return bool(200 <= response.status < 300)
    except urllib.error.HTTPError as exc:
        text = exc.read().decode("utf-8", "replace")
        if "BucketAlreadyOwnedByYou" in text:
            return True
        raise StorageError(
            f"creating bucket s3://{store.bucket} failed: HTTP {exc.code} "
            f"{store.redact(text[:200])}",
            hint="create the bucket yourself, or check the credentials' permissions",
        ) from exc
    except urllib.error.URLError as exc:
        raise StorageError(f"creating bucket s3://{store.bucket} failed: {exc.reason}") from exc


def _check_endpoint(endpoint: str | None, allow_http: bool | None) -> bool:
    """Validate the endpoint; return whether plain HTTP is to be allowed."""
    if not endpoint:
        return False
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(
            f"invalid S3 endpoint {endpoint!r}",
            hint="use endpoint=http://127.0.0.1:9000 or endpoint=https://s3.example.com",
        )
    if parts.username or parts.password:
        raise UsageError(
            "credentials in the S3 endpoint are not allowed",
            hint="set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment",
        )
    if parts.scheme == "https":
        return False
    if allow_http is None:
        allow_http = is_loopback(parts.hostname)
    if not allow_http:
        raise UsageError(
            f"plain http to {parts.hostname} would send backups unencrypted over the network",
            hint="use https, or add allow_http=true to the URL if you accept that",
        )
    return True
