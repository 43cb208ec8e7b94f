"""Google Cloud Storage (``gs://``) and Azure Blob Storage (``az://``) through obstore.

Both honour conditional creates natively (GCS ``ifGenerationMatch=0``, Azure
``If-None-Match: *``), so ``atomic_create`` is true without a probe.

- ``gs://BUCKET[/PREFIX]``: credentials from ``GOOGLE_SERVICE_ACCOUNT`` (a key file
  path; also ``GOOGLE_SERVICE_ACCOUNT_PATH``), ``GOOGLE_SERVICE_ACCOUNT_KEY`` (the JSON
  itself) or ``GOOGLE_APPLICATION_CREDENTIALS``; else the metadata server on GCP.
- ``az://CONTAINER[/PREFIX][?account=NAME]``: the account from ``account=`` or
  ``AZURE_STORAGE_ACCOUNT_NAME``; the key from ``AZURE_STORAGE_ACCOUNT_KEY`` or a SAS
  token from ``AZURE_STORAGE_SAS_KEY``; else a managed identity / Azure CLI login.

Options on both: ``retries`` (default 3), ``timeout`` (per request, default ``10m``).
"""

from __future__ import annotations

import os

from drkit.connectors.objectstore.remote import (
    ObstoreStore,
    ParsedURL,
    client_options,
    import_obstore,
    retry_config,
)
from drkit.errors import SecretMissing

_COMMON = frozenset({"retries", "timeout"})
#: Environment variables whose values must never show up in messages.
GCS_SECRET_VARS = ("GOOGLE_SERVICE_ACCOUNT_KEY", "GOOGLE_BEARER_TOKEN")
AZURE_SECRET_VARS = (
    "AZURE_STORAGE_ACCOUNT_KEY",
    "AZURE_STORAGE_ACCESS_KEY",
    "AZURE_STORAGE_MASTER_KEY",
    "AZURE_STORAGE_SAS_KEY",
    "AZURE_STORAGE_SAS_TOKEN",
    "AZURE_STORAGE_CLIENT_SECRET",
    "AZURE_STORAGE_TOKEN",
)


def _env_secrets(names: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(v for v in (os.environ.get(n) for n in names) if v)


class GCSStore(ObstoreStore):
    @classmethod
    def from_url(cls, url: str) -> GCSStore:
        parsed = ParsedURL(url, "gs", _COMMON)
        obstore = import_obstore()
        client = obstore.store.GCSStore(
            parsed.container,
            prefix=parsed.prefix or None,
            client_options=client_options(
                allow_http=False, timeout=parsed.duration("timeout", 600.0)
            ),
            retry_config=retry_config(parsed.number("retries", 3)),
        )
        return cls(
            client,
            url=parsed.base("gs"),
            conditional=True,
            secrets=_env_secrets(GCS_SECRET_VARS),
        )


class AzureStore(ObstoreStore):
    @classmethod
    def from_url(cls, url: str) -> AzureStore:
        parsed = ParsedURL(url, "az", _COMMON | {"account"})
        account = parsed.options.get("account") or os.environ.get("AZURE_STORAGE_ACCOUNT_NAME")
        if not account:
            raise SecretMissing(
                f"no Azure storage account for {parsed.base('az')}",
                hint="export AZURE_STORAGE_ACCOUNT_NAME (and AZURE_STORAGE_ACCOUNT_KEY), "
                "or add ?account=NAME to the URL",
            )
        obstore = import_obstore()
        client = obstore.store.AzureStore(
            parsed.container,
            prefix=parsed.prefix or None,
            account_name=account,
            client_options=client_options(
                allow_http=False, timeout=parsed.duration("timeout", 600.0)
            ),
            retry_config=retry_config(parsed.number("retries", 3)),
        )
        url_text = parsed.base("az")
        if "account" in parsed.options:
            url_text += f"?account={account}"
        return cls(
            client,
            url=url_text,
            conditional=True,
            secrets=_env_secrets(AZURE_SECRET_VARS),
        )
