"""A real S3 API on 127.0.0.1 for the tests: moto's server, in a process of its own.

``python tests/s3_server.py`` starts moto's WSGI app on a free port, prints the port on one
line and serves until killed. In its own process, moto's imports and threads stay out of
the test process (whose warnings are errors), and its part-size minimum is lowered through
``S3_UPLOAD_PART_MIN_SIZE`` (read by moto when it is imported), so multipart uploads can be
tested with small files.

:class:`S3Server` starts it, gives the ``storage_options`` that reach it, and makes buckets
and reads objects back with boto3 (the test's independent view of the store).
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

__all__ = ["S3Server", "S3Proxy", "S3_ENV", "PART_MIN"]

#: moto's smallest part in the tests: 1 MiB (S3 itself insists on 5 MiB).
PART_MIN = 1 << 20
#: Dummy credentials, and no look for an EC2 metadata service off this machine.
S3_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}


class S3Server:
    """moto's S3 server in a subprocess on 127.0.0.1.

    Examples
    --------
    >>> with S3Server() as s3:
    ...     bucket = s3.bucket()
    ...     s3.client.list_objects_v2(Bucket=bucket)
    """

    def __init__(self) -> None:
        self.proc: subprocess.Popen[str] | None = None
        self.port = 0
        self.client: Any = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def options(self) -> dict[str, Any]:
        """``storage_options`` for s3fs."""
        return {"endpoint_url": self.endpoint, "key": "testing", "secret": "testing"}

    def start(self) -> S3Server:
        env = {**os.environ, **S3_ENV, "S3_UPLOAD_PART_MIN_SIZE": str(PART_MIN), "PYTHONWARNINGS": "ignore"}
        self.proc = subprocess.Popen(
            [sys.executable, __file__], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # the server prints its port once it listens
        if not line.strip().isdigit():
            self.stop()
            raise RuntimeError(f"moto's S3 server did not start: {line!r}")
        self.port = int(line)
        import boto3

        self.client = boto3.client(
            "s3", endpoint_url=self.endpoint, aws_access_key_id="testing", aws_secret_access_key="testing",
            region_name="us-east-1",
        )
        return self

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            if self.proc.stdout is not None:
                self.proc.stdout.close()
            self.proc = None

    def __enter__(self) -> S3Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def bucket(self) -> str:
        """A new, empty bucket."""
        name = f"vidnb-{uuid.uuid4().hex[:12]}"
        self.client.create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str, prefix: str = "") -> dict[str, int]:
        """Every object of the bucket (under ``prefix``): key -> size."""
        out: dict[str, int] = {}
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            out.update({o["Key"]: o["Size"] for o in page.get("Contents", [])})
        return out

    def body(self, bucket: str, key: str) -> bytes:
        return bytes(self.client.get_object(Bucket=bucket, Key=key)["Body"].read())

    def metadata(self, bucket: str, key: str) -> dict[str, str]:
        return dict(self.client.head_object(Bucket=bucket, Key=key)["Metadata"])

    def uploads(self, bucket: str) -> list[str]:
        """Keys of the multipart uploads still open in the bucket."""
        return [u["Key"] for u in self.client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]


_REQUEST = re.compile(rb"(GET|PUT|POST|HEAD|DELETE) (/[^ \r\n]*) HTTP/1\.1\r\n")


class S3Proxy:
    """A TCP relay in front of the S3 server: it records each request's method and path, and can
    stop passing bytes on once ``hold_after`` bytes of requests have gone through (an upload frozen
    half way, for a kill to land in).

    Examples
    --------
    >>> with S3Proxy(s3.port) as proxy:
    ...     ...  # storage_options={"endpoint_url": proxy.endpoint, ...}
    ...     proxy.requests   # [("GET", "/bucket?list-type=2&prefix=..."), ...]
    """

    def __init__(self, upstream_port: int, hold_after: int | None = None) -> None:
        self.upstream_port = upstream_port
        self.hold_after = hold_after
        self.requests: list[tuple[str, str]] = []
        self.sent = 0
        #: Set once the relay holds the rest of the requests back.
        self.holding = threading.Event()
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: Any = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> S3Proxy:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            self._server = loop.run_until_complete(asyncio.start_server(self._relay, "127.0.0.1", 0))
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=run, name="s3-proxy", daemon=True)
        self._thread.start()
        ready.wait()
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(timeout=10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._loop = None

    async def _shutdown(self) -> None:
        self._server.close()
        relays = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for t in relays:
            t.cancel()
        await asyncio.gather(*relays, return_exceptions=True)
        # Every stream is closed on this loop before it closes: one left to the garbage
        # collector warns ("loop is closed") in whatever test happens to run then.
        for w in self._writers:
            w.close()
        await asyncio.gather(*(w.wait_closed() for w in self._writers), return_exceptions=True)
        self._writers.clear()

    def __enter__(self) -> S3Proxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except (OSError, asyncio.CancelledError):
            writer.close()  # no upstream: the client's side is closed here, not by the GC later
            return
        self._writers.add(up_writer)
        back = asyncio.ensure_future(self._pipe(up_reader, writer))
        tail = b""
        try:
            while chunk := await reader.read(65536):
                seen = tail + chunk
                for m in _REQUEST.finditer(seen):
                    if m.end() > len(tail):  # not counted with the previous chunk
                        self.requests.append((m.group(1).decode(), m.group(2).decode()))
                tail = seen[-512:]
                if self.hold_after is not None and self.sent + len(chunk) > self.hold_after:
                    self.holding.set()
                    while await reader.read(65536):  # swallowed until the client goes away
                        pass
                    return
                self.sent += len(chunk)
                up_writer.write(chunk)
                await up_writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            back.cancel()
            await asyncio.gather(back, return_exceptions=True)
            up_writer.close()
            writer.close()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while chunk := await reader.read(65536):
                writer.write(chunk)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass

    def count(self, method: str, query: str = "") -> int:
        """Requests with this method whose path contains ``query`` (``"list-type=2"``, ``"uploads"``)."""
        return sum(1 for m, path in self.requests if m == method and query in path)


def _serve() -> None:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import make_server

    try:  # newer moto has a request handler of its own (what ThreadedMotoServer uses)
        from moto.moto_server.werkzeug_app import MotoRequestHandler as handler
    except ImportError:
        handler = None
    app = DomainDispatcherApplication(create_backend_app)
    server = make_server("127.0.0.1", 0, app, threaded=True, **({"request_handler": handler} if handler else {}))
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    _serve()
