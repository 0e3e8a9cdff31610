"""Destinations on object storage: recognising an fsspec URL, opening its file system, the Storage interface.

A destination such as ``s3://bucket/videos/`` or ``memory://clips/a.mp4`` is written through
`fsspec <https://filesystem-spec.readthedocs.io>`_. fsspec and the protocol's package
(s3fs, gcsfs, adlfs) are optional: they are imported only when such a destination is met,
and a missing one is a :class:`~vidnb.MissingDependencyError` naming what to install
(fsspec's own ImportError says "Install s3fs to access S3", with no pip command).

:class:`Storage` is what the rest of vidnb asks of a store; :class:`FsspecStorage` does it
with fsspec's generic calls, for any protocol. An upload there goes to a hidden temporary
name beside the object and is moved onto it when whole, so a crash never leaves a partial
object under the real name (on stores where a move is a copy, that costs a copy).
S3 has its own (:mod:`vidnb._storage_s3`), which writes in one request or one multipart
upload, keeps the sha256 in the object's metadata and aborts uploads a crash left open.
"""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

from ._errors import DestinationError, MissingDependencyError, NetworkError, VidnbError

__all__ = [
    "ObjectInfo",
    "Storage",
    "FsspecStorage",
    "remote_url",
    "local_path",
    "protocol_of",
    "filesystem",
    "storage_error",
    "join_url",
    "is_folder_url",
    "open_remote",
    "TEMP_MARK",
    "PROBE_PREFIX",
]

# "scheme://" of two letters or more: "C://x" is not a URL but a Windows drive.
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+://")
#: The package each protocol needs, and the pip command that brings it.
_PACKAGES: dict[str, tuple[str, str]] = {
    "s3": ("s3fs", "'vidnb[s3]'"),
    "s3a": ("s3fs", "'vidnb[s3]'"),
    "gs": ("gcsfs", "'vidnb[gcs]'"),
    "gcs": ("gcsfs", "'vidnb[gcs]'"),
    "az": ("adlfs", "'vidnb[azure]'"),
    "abfs": ("adlfs", "'vidnb[azure]'"),
    "abfss": ("adlfs", "'vidnb[azure]'"),
}
#: In the name of a generic upload's temporary object (``.<name>.vidnb-upload-<token>``).
TEMP_MARK = ".vidnb-upload-"
#: Objects written (and deleted at once) to check that a destination can be written.
PROBE_PREFIX = ".vidnb-write-check-"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class ObjectInfo:
    """An object that exists: its size, and the sha256 and format vidnb recorded when it wrote it."""

    size: int
    sha256: str | None = None
    format: str | None = None


class Storage(Protocol):
    """What vidnb asks of an object store. Paths are the file system's own (``bucket/key``), no protocol."""

    def info(self, path: str) -> ObjectInfo | None:
        """The object at ``path``, or None when there is none (a folder is an error)."""

    def listing(self, prefix: str) -> dict[str, int]:
        """Every object under ``prefix`` (recursively), as path relative to it -> size, in as few requests as the
        store allows (one per 1000 keys on S3)."""

    def upload(self, local: Path, path: str, sha256: str, fmt: str | None) -> None:
        """Write the verified local file ``local`` to ``path`` so that the object appears whole or not at all."""

    def abort_orphans(self, prefix: str, paths: Collection[str]) -> int:
        """Abort what crashed uploads of ``paths`` (under ``prefix``) left behind; return how many."""

    def check_writable(self, prefix: str) -> None:
        """Write a small object under ``prefix`` and delete it; raise when either fails."""

    def open(self, path: str) -> IO[bytes]:
        """The object for reading (seekable; bytes are fetched as they are read)."""

    def sha256(self, path: str) -> str:
        """The object's sha256, computed by reading it."""


def remote_url(dest: object) -> str | None:
    """``dest`` when it is an fsspec URL of something other than the local disk, else None.

    ``file://`` URLs are local (see :func:`local_path`); ``Path`` objects are never URLs.

    Examples
    --------
    >>> remote_url("s3://bucket/videos/"), remote_url("videos/"), remote_url("file:///tmp/a.mp4")
    ('s3://bucket/videos/', None, None)
    """
    if not isinstance(dest, str):
        return None
    if not _URL.match(dest) and "::" not in dest:
        return None
    return None if protocol_of(dest) in ("file", "local") else dest


def local_path(dest: str) -> str:
    """A ``file://`` URL as the path it names (anything else unchanged).

    >>> local_path("file:///tmp/a.mp4")
    '/tmp/a.mp4'
    """
    if _URL.match(dest) and protocol_of(dest) in ("file", "local"):
        return dest.split("://", 1)[1]
    return dest


def protocol_of(url: str) -> str:
    """The protocol that stores the bytes: the last of a chained URL (``simplecache::s3://...`` -> ``s3``).

    >>> protocol_of("simplecache::s3://b/k"), protocol_of("memory://x")
    ('s3', 'memory')
    """
    last = url.rsplit("::", 1)[-1]
    return last.split("://", 1)[0].lower() if "://" in last else last.lower()


def is_folder_url(url: str) -> bool:
    """A URL that names a folder: it ends with ``/``, or it is a bucket alone (``s3://bucket``)."""
    if url.endswith("/"):
        return True
    rest = url.rsplit("::", 1)[-1].split("://", 1)[-1]
    return "/" not in rest.strip("/")


def join_url(folder: str, name: str) -> str:
    """``name`` (a relative POSIX path) inside the folder URL ``folder``.

    >>> join_url("s3://bucket/videos", "sub/a.mp4")
    's3://bucket/videos/sub/a.mp4'
    """
    return folder.rstrip("/") + "/" + name.lstrip("/")


def filesystem(url: str, options: Mapping[str, Any]) -> tuple[Any, str]:
    """fsspec's file system for ``url`` (with ``options``) and the path in it; import errors with install hints.

    Examples
    --------
    >>> fs, path = filesystem("memory://videos/a.mp4", {})  # doctest: +SKIP
    """
    protocol = protocol_of(url)
    package, install = _PACKAGES.get(protocol, ("fsspec", "fsspec"))
    needed_for = f"to write to {protocol}:// destinations"
    try:
        import fsspec.core
    except ImportError as exc:
        raise MissingDependencyError("fsspec", needed_for=needed_for, install=install) from exc
    try:
        fs, path = fsspec.core.url_to_fs(url, **options)
        return fs, str(path)
    except ImportError as exc:
        raise MissingDependencyError(package, needed_for=needed_for, install=install) from exc
    except ValueError as exc:
        if "protocol" in str(exc).lower():
            raise DestinationError(f"{url}: fsspec knows no protocol {protocol!r} ({exc}).", None) from exc
        raise
    except TypeError as exc:  # an option the file system does not take
        raise ValueError(f"storage_options do not suit {protocol}://: {exc}") from exc


def storage_error(exc: BaseException, url: str, doing: str) -> VidnbError | None:
    """An error met while talking to a store, as vidnb names it (None: a bug, to propagate as itself)."""
    if isinstance(exc, VidnbError):
        return exc
    if isinstance(exc, FileNotFoundError):
        return DestinationError(f"Cannot {doing} {url}: the bucket or folder does not exist ({exc}).", None)
    if isinstance(exc, PermissionError):
        return DestinationError(f"Not allowed to {doing} {url}: {exc}. Check the credentials in storage_options.", None)
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return NetworkError(f"Cannot reach the store of {url} to {doing} it: {exc}.")
    if isinstance(exc, OSError):
        return DestinationError(f"Cannot {doing} {url}: {exc}.", None)
    # The store's client library (botocore, aiohttp, ...) has error types of its own.
    root = type(exc).__module__.split(".", 1)[0]
    if root in ("botocore", "aiobotocore", "s3fs", "fsspec", "gcsfs", "adlfs", "azure", "google", "aiohttp"):
        return DestinationError(f"Cannot {doing} {url}: {type(exc).__name__}: {exc}.", None)
    return None


@contextmanager
def translated(url: str, doing: str) -> Iterator[None]:
    """Raise what the store raised as vidnb's error, chained (unknown errors as themselves)."""
    try:
        yield
    except Exception as exc:
        err = storage_error(exc, url, doing)
        if err is None or err is exc:
            raise
        raise err from exc


class FsspecStorage:
    """:class:`Storage` on any fsspec file system, with its generic calls.

    Examples
    --------
    >>> fs, path = filesystem("memory://videos/", {})          # doctest: +SKIP
    >>> FsspecStorage(fs).listing(path)                         # doctest: +SKIP
    {'a.mp4': 1048576}
    """

    def __init__(self, fs: Any) -> None:
        self.fs = fs

    def _url(self, path: str) -> str:
        return str(self.fs.unstrip_protocol(path))

    def info(self, path: str) -> ObjectInfo | None:
        with translated(self._url(path), "read"):
            try:
                found = self.fs.info(path)
            except FileNotFoundError:
                return None
        if found.get("type") == "directory":
            raise DestinationError(f"{self._url(path)} is a folder; end a folder URL with / to save into it.", None)
        return ObjectInfo(int(found["size"]))

    def listing(self, prefix: str) -> dict[str, int]:
        root = prefix.rstrip("/")
        with translated(self._url(root), "list"):
            self.fs.invalidate_cache(root)
            try:
                found = self.fs.find(root, detail=True)
            except FileNotFoundError:
                return {}
        out: dict[str, int] = {}
        for name, entry in found.items():
            rel = name[len(root) :].lstrip("/") if name.startswith(root) else name
            if rel and entry.get("type") != "directory" and not _hidden(rel):
                out[rel] = int(entry.get("size") or 0)
        return out

    def upload(self, local: Path, path: str, sha256: str, fmt: str | None) -> None:
        # Under a hidden name first, then moved: a crash leaves the hidden name (abort_orphans
        # removes it), never a partial object under the real one.
        parent, _, name = path.rpartition("/")
        temp = f"{parent}/.{name}{TEMP_MARK}{uuid.uuid4().hex[:12]}" if parent else f".{name}{TEMP_MARK}x"
        with translated(self._url(path), "write"):
            if parent:
                self.fs.makedirs(parent, exist_ok=True)
            try:
                self.fs.put_file(os.fspath(local), temp)
                self.fs.mv(temp, path)
            except BaseException:
                _remove(self.fs, temp)
                raise

    def abort_orphans(self, prefix: str, paths: Collection[str]) -> int:
        wanted = set(paths)
        removed = 0
        for parent in {p.rpartition("/")[0] for p in wanted}:
            try:
                names = self.fs.ls(parent, detail=False)
            except (FileNotFoundError, NotADirectoryError):
                continue
            for name in names:
                base = name.rpartition("/")[2]
                if TEMP_MARK in base and f"{parent}/{base[1:].split(TEMP_MARK)[0]}" in wanted:
                    _remove(self.fs, name)
                    removed += 1
        return removed

    def check_writable(self, prefix: str) -> None:
        path = f"{prefix.rstrip('/')}/{PROBE_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}"
        with translated(self._url(prefix), "write to"):
            self.fs.pipe_file(path, b"vidnb")
            self.fs.rm_file(path)

    def open(self, path: str) -> IO[bytes]:
        with translated(self._url(path), "read"):
            return self.fs.open(path, "rb")  # type: ignore[no-any-return]

    def sha256(self, path: str) -> str:
        h = hashlib.sha256()
        with self.open(path) as f:
            while chunk := f.read(_CHUNK):
                h.update(chunk)
        return h.hexdigest()


def _hidden(rel: str) -> bool:
    """vidnb's own temporary and probe objects, which a listing of finished objects leaves out."""
    base = rel.rpartition("/")[2]
    return TEMP_MARK in base or base.startswith(PROBE_PREFIX)


def _remove(fs: Any, path: str) -> None:
    try:
        fs.rm_file(path)
    except (FileNotFoundError, OSError):
        pass


def open_remote(url: str, options: Mapping[str, Any] | None) -> tuple[IO[bytes], int]:
    """An object opened for reading, and its size (what :func:`vidnb.probe` and ``preview`` read a remote result with).

    Examples
    --------
    >>> f, size = open_remote("s3://bucket/videos/a.mp4", {"anon": True})  # doctest: +SKIP
    """
    fs, path = filesystem(url, options or {})
    with translated(url, "read"):
        try:
            size = int(fs.info(path)["size"])
        except FileNotFoundError:
            err = DestinationError(f"No video at {url}: the object does not exist. Check the URL.", None)
            err.errno = 2  # ENOENT, as for a missing file
            raise err from None
        return fs.open(path, "rb"), size
