"""Private object storage for report photos: local disk (embedded default) or any S3-compatible endpoint."""

from app.storage.base import (
    InvalidObjectKey,
    ObjectNotFound,
    ObjectStorage,
    StorageUnavailable,
    StoredObject,
)
from app.storage.local import LocalDiskStorage
from app.storage.s3 import S3Storage
from app.storage.signing import InvalidSignature, UrlExpired, UrlSigner

__all__ = [
    "InvalidObjectKey",
    "InvalidSignature",
    "LocalDiskStorage",
    "ObjectNotFound",
    "ObjectStorage",
    "S3Storage",
    "StorageUnavailable",
    "StoredObject",
    "UrlExpired",
    "UrlSigner",
]
