"""S3-compatible object storage (MinIO, AWS S3, Ceph RGW, OSS/COS S3 gateways) through the `minio` client.

The minio client is synchronous, so every network call runs in a worker thread. Its default HTTP pool waits
5 minutes and retries 5 times; a dead endpoint would then hang uploads and readiness probes, so this module
builds its own pool with short timeouts and few retries: a down endpoint yields StorageUnavailable in seconds.
"""

from __future__ import annotations

import builtins
import io
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TypeVar
from urllib.parse import urlsplit

import anyio.to_thread
import certifi
import urllib3
from minio import Minio
from minio.error import MinioException, S3Error

from app.storage.base import (
    ObjectNotFound,
    StorageUnavailable,
    StoredObject,
    url_ttl_seconds,
    validate_content_type,
    validate_key,
    validate_prefix,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")

_NOT_FOUND_CODES = frozenset({"NoSuchKey", "NoSuchObject"})
_BUCKET_TAKEN_CODES = frozenset({"BucketAlreadyOwnedByYou"})


def _http_pool(connect_timeout: float, read_timeout: float) -> urllib3.PoolManager:
    retries = urllib3.Retry(
        total=2,  # black-holed host, worst case: 3 connects x connect_timeout (about 6 s by default)
        read=0,  # a read timeout already cost read_timeout; retrying would double the wait
        backoff_factor=0.2,
        status_forcelist=(500, 502, 503, 504),
        respect_retry_after_header=False,  # a 503 with "Retry-After: 120" must not park the request
    )
    return urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=connect_timeout, read=read_timeout),
        retries=retries,
        maxsize=16,  # roughly the worker threads that may talk to S3 at once
        cert_reqs="CERT_REQUIRED",
        ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where(),
    )


def _split_endpoint(endpoint: str, secure: bool) -> tuple[str, bool]:
    """Accept "host:port" (minio style) or "http(s)://host:port"; a scheme, when given, decides `secure`."""
    parts = urlsplit(endpoint if "://" in endpoint else f"//{endpoint}")
    if not parts.netloc or parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"S3 endpoint must be host[:port] or scheme://host[:port], got {endpoint!r}")
    return parts.netloc, (parts.scheme == "https") if parts.scheme else secure


@contextmanager
def _mapped_errors(operation: str) -> Iterator[None]:
    """NoSuchKey is the caller's business; anything else (refused, timed out, 5xx, bad credentials, missing
    bucket) means the store is unusable right now, which the API reports as 503."""
    try:
        yield
    except S3Error as exc:
        if exc.code in _NOT_FOUND_CODES:
            raise ObjectNotFound() from exc
        logger.warning("S3 %s failed: %s", operation, exc)
        raise StorageUnavailable() from exc
    except (MinioException, urllib3.exceptions.HTTPError, OSError) as exc:
        logger.warning("S3 %s failed: %r", operation, exc)
        raise StorageUnavailable() from exc


class S3Storage:
    def __init__(
        self,
        endpoint: str,
        access_key: str,
        secret_key: str,
        bucket: str,
        secure: bool,
        region: str = "us-east-1",
        public_endpoint: str | None = None,
        *,
        connect_timeout: float = 2.0,
        read_timeout: float = 10.0,
    ) -> None:
        self.bucket = bucket
        host, is_secure = _split_endpoint(endpoint, secure)
        # An explicit region stops minio from calling GetBucketLocation before the first request.
        self._client = Minio(
            host,
            access_key=access_key,
            secret_key=secret_key,
            secure=is_secure,
            region=region,
            http_client=_http_pool(connect_timeout, read_timeout),
        )
        # Presigned URLs embed the host in the signature, so URLs for clients outside the cluster (a CDN or
        # public MinIO hostname) need a client configured with that host. It only signs, never connects.
        self._signer = self._client
        if public_endpoint:
            public_host, public_secure = _split_endpoint(public_endpoint, is_secure)
            self._signer = Minio(
                public_host,
                access_key=access_key,
                secret_key=secret_key,
                secure=public_secure,
                region=region,
                http_client=_http_pool(connect_timeout, read_timeout),
            )

    # -- ObjectStorage ---------------------------------------------------------------------------------

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        validate_key(key)
        validate_content_type(content_type)
        # S3 PUT is atomic per object: readers see the old or the new version, never a partial one.
        put = partial(self._client.put_object, self.bucket, key, io.BytesIO(data), len(data), content_type)
        await self._run("put", put)

    async def get(self, key: str) -> bytes:
        validate_key(key)
        return await self._run("get", partial(self._get_sync, key))

    async def exists(self, key: str) -> bool:
        validate_key(key)
        return await self._run("exists", partial(self._exists_sync, key))

    async def delete(self, key: str) -> None:
        validate_key(key)
        # S3 DELETE of a missing key already succeeds, which gives idempotency for free.
        await self._run("delete", partial(self._client.remove_object, self.bucket, key))

    async def list(self, prefix: str) -> builtins.list[StoredObject]:
        validate_prefix(prefix)
        return await self._run("list", partial(self._list_sync, prefix))

    async def signed_url(self, key: str, expires_in: timedelta, *, issued_at: datetime | None = None) -> str:
        validate_key(key)
        expires = timedelta(seconds=url_ttl_seconds(expires_in))
        # Pure computation (credentials and region are local), so it needs no worker thread.
        with _mapped_errors("signed_url"):
            return self._signer.presigned_get_object(self.bucket, key, expires=expires, request_date=issued_at)

    async def check(self) -> None:
        if not await self._run("check", partial(self._client.bucket_exists, self.bucket)):
            logger.warning("S3 bucket %r does not exist", self.bucket)
            raise StorageUnavailable()

    # -- provisioning ----------------------------------------------------------------------------------

    async def ensure_bucket(self) -> None:
        """Create the bucket if missing. New buckets are private (no policy is attached)."""
        await self._run("ensure_bucket", self._ensure_bucket_sync)

    # -- internals -------------------------------------------------------------------------------------

    async def _run(self, operation: str, fn: Callable[[], T]) -> T:
        def mapped() -> T:
            with _mapped_errors(operation):
                return fn()

        return await anyio.to_thread.run_sync(mapped)

    def _get_sync(self, key: str) -> bytes:
        response = self._client.get_object(self.bucket, key)
        try:
            return response.read()
        finally:
            response.close()
            response.release_conn()

    def _exists_sync(self, key: str) -> bool:
        try:
            self._client.stat_object(self.bucket, key)
        except S3Error as exc:
            if exc.code in _NOT_FOUND_CODES:
                return False
            raise
        return True

    def _list_sync(self, prefix: str) -> builtins.list[StoredObject]:
        # list_objects is a lazy paginator doing HTTP calls, so it is drained here, inside the worker thread.
        objects = self._client.list_objects(self.bucket, prefix=prefix or None, recursive=True)
        found = [
            StoredObject(key=o.object_name, size=o.size or 0, modified_at=o.last_modified.astimezone(UTC))
            for o in objects
            if o.object_name is not None and o.last_modified is not None and not o.is_dir
        ]
        return sorted(found, key=lambda item: item.key)

    def _ensure_bucket_sync(self) -> None:
        if self._client.bucket_exists(self.bucket):
            return
        try:
            self._client.make_bucket(self.bucket)
        except S3Error as exc:
            if exc.code not in _BUCKET_TAKEN_CODES:  # lost a race with another instance: fine
                raise
