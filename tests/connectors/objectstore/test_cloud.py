"""Live tests against real clouds, run only when their credentials are in the environment.

- AWS S3: ``DRKIT_TEST_S3_URL`` (e.g. ``s3://my-bucket/drkit-ci``) plus ``AWS_ACCESS_KEY_ID``
  and ``AWS_SECRET_ACCESS_KEY``;
- GCS: ``DRKIT_TEST_GCS_URL`` plus ``GOOGLE_SERVICE_ACCOUNT`` or
  ``GOOGLE_APPLICATION_CREDENTIALS``;
- Azure: ``DRKIT_TEST_AZURE_URL`` plus ``AZURE_STORAGE_ACCOUNT_NAME`` and
  ``AZURE_STORAGE_ACCOUNT_KEY``.

The full conformance suite also runs against each configured cloud (see conftest.py).
"""

from __future__ import annotations

import os
import uuid

import pytest

from drkit.connectors.objectstore.registry import open_store
from drkit.errors import ObjectExists, ObjectNotFound

from .conftest import CLOUD_BACKENDS


@pytest.mark.cloud
@pytest.mark.parametrize("name", sorted(CLOUD_BACKENDS))
def test_cloud_smoke(name: str) -> None:
    url_var, credential_vars = CLOUD_BACKENDS[name]
    base = os.environ.get(url_var)
    if not base or not any(os.environ.get(v) for v in credential_vars):
        pytest.skip(f"set {url_var} and one of {', '.join(credential_vars)} to run")
    store = open_store(f"{base.rstrip('/')}/{uuid.uuid4().hex}")
    try:
        store.put("smoke/object", b"hello", if_absent=True)
        with pytest.raises(ObjectExists):
            store.put("smoke/object", b"again", if_absent=True)
        assert store.get_range("smoke/object", 1, 3) == b"ell"
        assert [i.key for i in store.list("smoke/")] == ["smoke/object"]
    finally:
        store.delete("smoke/object")
    with pytest.raises(ObjectNotFound):
        store.get("smoke/object")
