"""Local-disk object storage, the embedded default.

On-disk layout (documented because operators back it up and inspect it):

* key ``reports/42/photo.jpg`` lives in the file ``<root>/reports/42/photo.jpg~obj``. Key segments never
  contain ``~``, so the suffix keeps object files and directories apart: ``a`` and ``a/b`` can both exist,
  as on S3.
* each object file is one header line ``hzobj1 <content-type>\\n`` followed by the raw bytes
  (``tail -n +2`` gives the original). Keeping the content type in the same file means one ``os.replace``
  swaps bytes and type together, so even a crash cannot pair new bytes with an old type, as a sidecar could.
* writes go to ``.<name>~tmp.<random>`` in the same directory, are fsynced, renamed over the target, then
  the directory is fsynced. Files are 0600 and new directories 0700: originals are evidence and stay private.
* empty directories are not pruned after delete; pruning would race with a concurrent put into them.
"""

from __future__ import annotations

import builtins
import logging
import os
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import BinaryIO, TypeVar

import anyio.to_thread

from app.storage.base import (
    ObjectNotFound,
    StorageUnavailable,
    StoredObject,
    url_ttl_seconds,
    validate_content_type,
    validate_key,
    validate_prefix,
)
from app.storage.signing import UrlSigner

logger = logging.getLogger(__name__)

OBJECT_SUFFIX = "~obj"
_TMP_MARKER = "~tmp."
_MAGIC = b"hzobj1 "
_MAX_HEADER = len(_MAGIC) + 256  # content type is at most 255 chars, plus the newline
_CHUNK = 64 * 1024

T = TypeVar("T")


class CorruptObject(OSError):
    """An object file without a valid header: treated like any other disk failure."""


@dataclass(slots=True)
class OpenedObject:
    """An object opened for streaming.

    The open descriptor keeps serving the version it opened even if the key is overwritten meanwhile,
    so a response never mixes two versions.
    """

    file: BinaryIO
    content_type: str
    size: int
    modified_at: datetime

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            while chunk := await anyio.to_thread.run_sync(self.file.read, _CHUNK):
                yield chunk
        finally:
            self.file.close()

    def close(self) -> None:
        self.file.close()


class LocalDiskStorage:
    def __init__(self, root: Path, url_signer: UrlSigner) -> None:
        self.root = Path(root)
        self.url_signer = url_signer

    # -- ObjectStorage ---------------------------------------------------------------------------------

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        path = self._path(key)
        header = _MAGIC + validate_content_type(content_type).encode() + b"\n"
        await self._run(_write_atomic, path, header, data)

    async def get(self, key: str) -> bytes:
        return await self._run(_read_object, self._path(key))

    async def exists(self, key: str) -> bool:
        return await self._run(_is_file, self._path(key))

    async def delete(self, key: str) -> None:
        await self._run(_unlink, self._path(key))

    async def list(self, prefix: str) -> builtins.list[StoredObject]:
        validate_prefix(prefix)
        return await self._run(self._list_sync, prefix)

    async def signed_url(self, key: str, expires_in: timedelta, *, issued_at: datetime | None = None) -> str:
        expires_at = (issued_at or datetime.now(UTC)) + timedelta(seconds=url_ttl_seconds(expires_in))
        return self.url_signer.sign(validate_key(key), expires_at)

    async def check(self) -> None:
        await self._run(_probe_writable, self.root)

    # -- for the media router --------------------------------------------------------------------------

    async def open(self, key: str) -> OpenedObject:
        """Open an object for streaming; the caller must consume `chunks()` or call `close()`."""
        return await self._run(_open_object, self._path(key))

    # -- internals -------------------------------------------------------------------------------------

    def _path(self, key: str) -> Path:
        *dirs, name = validate_key(key).split("/")
        return self.root.joinpath(*dirs, name + OBJECT_SUFFIX)

    async def _run(self, fn: Callable[..., T], *args: object) -> T:
        """Run file I/O in a worker thread; any OS failure (disk full, permissions, EIO) means unavailable."""
        try:
            return await anyio.to_thread.run_sync(partial(fn, *args))
        except OSError as exc:
            logger.warning("local storage %s failed: %r", fn.__name__, exc)
            raise StorageUnavailable() from exc

    def _list_sync(self, prefix: str) -> builtins.list[StoredObject]:
        # Walk only the deepest directory the prefix names; the rest of the prefix filters file names.
        base = self.root.joinpath(*prefix.split("/")[:-1])
        found: builtins.list[StoredObject] = []
        for path in _object_files(base):
            key = path.relative_to(self.root).as_posix().removesuffix(OBJECT_SUFFIX)
            if key.startswith(prefix) and (item := _describe(path, key)) is not None:
                found.append(item)
        return sorted(found, key=lambda item: item.key)


# -- sync helpers, run in worker threads -----------------------------------------------------------


def _private_opener(path: str, flags: int) -> int:
    return os.open(path, flags, 0o600)


def _fsync_dir(directory: Path) -> None:
    """Make a rename or new entry in `directory` durable; without this a crash can forget the rename."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _make_dirs(directory: Path) -> None:
    """mkdir -p that also fsyncs each parent it adds an entry to, so new directories survive a crash."""
    missing: list[Path] = []
    while not directory.exists():
        missing.append(directory)
        directory = directory.parent
    for new_dir in reversed(missing):
        with suppress(FileExistsError):  # a concurrent put created it first
            new_dir.mkdir(mode=0o700)
        _fsync_dir(new_dir.parent)


def _write_atomic(path: Path, header: bytes, data: bytes) -> None:
    _make_dirs(path.parent)
    tmp = path.with_name(f".{path.name}{_TMP_MARKER}{secrets.token_hex(8)}")
    try:
        with open(tmp, "xb", opener=_private_opener) as f:
            f.write(header)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        # Never leave a temp file behind, whatever failed (including the rename itself).
        with suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def _read_header(f: BinaryIO) -> tuple[str, int]:
    line = f.readline(_MAX_HEADER)
    if not line.startswith(_MAGIC) or not line.endswith(b"\n") or not line.isascii():
        raise CorruptObject(f"bad object header in {f.name!r}")
    return line[len(_MAGIC) : -1].decode("ascii"), len(line)


def _open_object(path: Path) -> OpenedObject:
    try:
        f = open(path, "rb")  # noqa: SIM115 - ownership passes to OpenedObject
    except FileNotFoundError:
        raise ObjectNotFound() from None
    try:
        content_type, header_len = _read_header(f)
        st = os.fstat(f.fileno())
    except BaseException:
        f.close()
        raise
    modified_at = datetime.fromtimestamp(st.st_mtime, UTC)
    return OpenedObject(f, content_type, st.st_size - header_len, modified_at)


def _read_object(path: Path) -> bytes:
    opened = _open_object(path)
    with opened.file as f:
        return f.read()


def _is_file(path: Path) -> bool:
    try:
        os.stat(path)
    except FileNotFoundError:
        return False
    return True


def _unlink(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        return  # delete is idempotent
    _fsync_dir(path.parent)


def _object_files(base: Path) -> list[Path]:
    def fail(exc: OSError) -> None:
        # os.walk silently skips unreadable directories by default; a listing must not quietly omit evidence.
        if not isinstance(exc, FileNotFoundError):  # missing means nothing was ever stored there
            raise exc

    files: list[Path] = []
    for dirpath, _dirs, names in os.walk(base, onerror=fail):
        files.extend(Path(dirpath, name) for name in names if name.endswith(OBJECT_SUFFIX))
    return files


def _describe(path: Path, key: str) -> StoredObject | None:
    try:
        opened = _open_object(path)
    except ObjectNotFound:
        return None  # deleted while we were listing
    opened.close()
    return StoredObject(key=key, size=opened.size, modified_at=opened.modified_at)


def _probe_writable(root: Path) -> None:
    """Readiness: the root exists (or can be created) and accepts a new file."""
    _make_dirs(root)
    probe = root / f".check{_TMP_MARKER}{secrets.token_hex(8)}"
    try:
        with open(probe, "xb", opener=_private_opener) as f:
            f.write(b"ok")
    finally:
        with suppress(FileNotFoundError):
            os.unlink(probe)
