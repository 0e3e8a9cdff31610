"""S3 (and what speaks its API) through s3fs: whole objects only, sha256 in their metadata, no orphaned uploads.

How an object appears whole or not at all: a file under twice the part size goes up in one
PutObject; a larger one as a multipart upload that is completed only after every part is
in (s3fs's ``put_file``, which aborts the upload itself when a part fails). Never
``fs.open(path, "wb")``: leaving its ``with`` block on an exception commits what was
written so far.

What a crash leaves: a process killed during a multipart upload leaves the upload open
(invisible, but its parts are kept and billed) until something aborts it. Before a
multipart upload of a key, the open uploads of that exact key are aborted, and a batch
aborts those of its keys once at the start; so the next run of the same download finishes
or aborts what the crashed one left. (An upload of the same key running elsewhere at that
moment is aborted too: one destination is written by one batch at a time.)

``VIDNB_S3_PART_SIZE`` (bytes, default 50 MiB, S3's minimum is 5 MiB) sets the part size.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Collection
from pathlib import Path
from typing import Any

from ._storage import PROBE_PREFIX, FsspecStorage, ObjectInfo, translated

__all__ = ["S3Storage", "part_size", "S3_PROTOCOLS", "DEFAULT_PART_SIZE"]

S3_PROTOCOLS = ("s3", "s3a")
DEFAULT_PART_SIZE = 50 << 20


def part_size() -> int:
    """The multipart part size: ``VIDNB_S3_PART_SIZE`` or 50 MiB. Files under twice this are one PUT."""
    raw = os.environ.get("VIDNB_S3_PART_SIZE")
    return int(raw) if raw else DEFAULT_PART_SIZE


class S3Storage(FsspecStorage):
    """:class:`~vidnb._storage.Storage` on an ``s3fs.S3FileSystem``, calling S3 directly where s3fs's generic
    calls would cost more requests or lose the metadata.

    Examples
    --------
    >>> fs, path = filesystem("s3://bucket/videos/", {"endpoint_url": "http://127.0.0.1:9000"})  # doctest: +SKIP
    >>> S3Storage(fs).listing(path)                                                              # doctest: +SKIP
    {'a.mp4': 1048576}
    """

    def _split(self, path: str) -> tuple[str, str]:
        bucket, key, _ = self.fs.split_path(path)
        return str(bucket), str(key)

    def info(self, path: str) -> ObjectInfo | None:
        bucket, key = self._split(path)
        # One HeadObject: s3fs's info() adds a listing for a missing key, looking for a "folder".
        with translated(self._url(path), "read"):
            try:
                head = self.fs.call_s3("head_object", Bucket=bucket, Key=key)
            except FileNotFoundError:
                return None
        meta = {k.lower(): v for k, v in (head.get("Metadata") or {}).items()}
        return ObjectInfo(int(head["ContentLength"]), meta.get("sha256"), meta.get("vidnb-format"))

    def upload(self, local: Path, path: str, sha256: str, fmt: str | None) -> None:
        chunk = part_size()
        size = local.stat().st_size
        metadata = {"sha256": sha256, **({"vidnb-format": fmt} if fmt else {})}
        with translated(self._url(path), "write"):
            if size >= 2 * chunk:
                # What a crashed upload of this key left would otherwise stay forever.
                self.abort_orphans(path.rpartition("/")[0], [path])
            self.fs.put_file(os.fspath(local), path, chunksize=chunk, Metadata=metadata)

    def abort_orphans(self, prefix: str, paths: Collection[str]) -> int:
        wanted = {self._split(p) for p in paths}
        if not wanted:
            return 0
        if prefix:
            bucket, key_prefix = self._split(prefix)
        else:
            bucket, key_prefix = next(iter(wanted))[0], ""
        aborted = 0
        with translated(self._url(prefix or bucket), "list the uploads of"):
            for upload in self._uploads(bucket, key_prefix):
                if (bucket, upload["Key"]) in wanted:
                    self.fs.call_s3(
                        "abort_multipart_upload", Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                    )
                    aborted += 1
        return aborted

    def _uploads(self, bucket: str, prefix: str) -> list[dict[str, Any]]:
        """Every open multipart upload under ``prefix`` (ListMultipartUploads, 1000 per page)."""
        found: list[dict[str, Any]] = []
        marker: dict[str, str] = {}
        while True:
            page = self.fs.call_s3("list_multipart_uploads", Bucket=bucket, Prefix=prefix, **marker)
            found.extend(page.get("Uploads") or [])
            if not page.get("IsTruncated"):
                return found
            marker = {"KeyMarker": page["NextKeyMarker"], "UploadIdMarker": page["NextUploadIdMarker"]}

    def check_writable(self, prefix: str) -> None:
        bucket, key_prefix = self._split(prefix)
        key = f"{key_prefix.rstrip('/') + '/' if key_prefix.strip('/') else ''}{PROBE_PREFIX}{os.getpid()}-"
        key += uuid.uuid4().hex[:8]
        with translated(self._url(prefix), "write to"):
            self.fs.call_s3("put_object", Bucket=bucket, Key=key, Body=b"vidnb")
            self.fs.call_s3("delete_object", Bucket=bucket, Key=key)
