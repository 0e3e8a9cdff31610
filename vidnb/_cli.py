"""The ``vidnb`` command: ``get`` (one or many downloads), ``info`` (what the server says), ``demo``.

Exit codes: 0 all done, 1 some downloads failed, 2 usage or invalid input, 130 interrupted
(Ctrl-C), 143 stopped by SIGTERM (``kill``, a container stop, ``timeout``), 129 by SIGHUP (a
closed terminal); when stopped the ``.part`` files stay, so the same command resumes. Errors
are one line each (``vidnb: error: ...``); ``--debug`` shows tracebacks and debug logs instead.

Every ``get`` option maps onto a keyword option of :func:`vidnb.download` (through
:func:`vidnb.download_many`), so the command and the Python API cannot drift apart in
behaviour; only the names differ, and :func:`_cli_words` puts the flag names into engine
messages that suggest a Python argument.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import os
import re
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

from . import __version__
from ._fmt import parse_size

log = logging.getLogger("vidnb")

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

EXAMPLES = """\
examples:
  vidnb get https://example.com/clip.mp4                   save clip.mp4 here
  vidnb get URL -o videos/                                 into a folder (created if needed)
  vidnb get URL -o talk.mp4 --sha256 9f2c...               to a file name, verified
  vidnb get -i videos.txt -o videos/ -j 16                 a manifest, 16 downloads at a time
  vidnb get URL1 URL2 URL3 -o videos/ --max-bytes 2G       several URLs, none larger than 2 GiB
  vidnb get URL -H "Cookie: session=abc"                   with a request header (repeatable)
  vidnb info https://example.com/clip.mp4                  size, type, ranges, format; no download
  vidnb demo                                               download the bundled sample from a local server

Interrupted (Ctrl-C) or failed downloads keep their .part files: run the same command
again and it resumes them; finished files are skipped.
"""

GET_EXAMPLES = """\
manifests (-i): a text file with one URL per line (optionally followed by a filename;
blank lines and # comments ignored), or a CSV file with a 'url' column and optional
'filename' and 'sha256' columns. Files are named by the filename given, else the URL's
last path segment when it has an extension, else as the server says.

output: one line per finished file on stdout (path, size, seconds; "already there" when
it was skipped, "resumed" when an earlier .part was continued); progress, failures and a
summary on stderr.

examples:
  vidnb get https://example.com/clip.mp4 -o clip.mp4
  vidnb get -i videos.csv -o videos/ -j 16 --retries 8
  vidnb get URL -x 8                     one file over 8 connections (byte ranges)
  vidnb get URL --limit-rate 5M          at most 5 MiB/s (with -i, the whole batch)
  vidnb get URL/master.m3u8 --quality 720p -o talk.ts
  vidnb get URL -H "Authorization: Bearer TOKEN" --timeout 120
"""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (``vidnb: error: ...``) and exit code 2."""

    def error(self, message: str) -> NoReturn:
        _print_error(f"{message} (see '{self.prog} --help')")
        raise SystemExit(EXIT_USAGE)


def _print_error(message: object) -> None:
    text = _cli_words(_one_line(message))
    if len(text) > 500:  # some library messages quote whole payloads
        text = text[:500] + " ..."
    print(f"vidnb: error: {text}", file=sys.stderr)


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


#: Advice in engine messages that names a Python argument, and the same advice as a flag.
#: The engine's wording stays as it is for Python callers; only what this command prints changes.
_CLI_HINTS = (
    ("pass require_video=False", "pass --any-type"),
    ("Pass overwrite=True", "Pass --overwrite"),
    ("pass headers=", "pass -H/--header"),
    ("pass a larger timeout=", "pass a larger --timeout"),
    ("Raise max_bytes", "Raise --max-bytes"),
)


def _cli_words(text: str) -> str:
    """``text`` with each Python-argument hint replaced by the flag that does the same."""
    for python, flag in _CLI_HINTS:
        text = text.replace(python, flag)
    return text


# --------------------------------------------------------------------------- argument types


def _size_arg(text: str) -> int:
    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _rate_arg(text: str) -> int:
    """``--limit-rate``: a size per second, in the words of ``--max-bytes`` (``/s`` may follow)."""
    return _size_arg(text.removesuffix("/s"))


def _int_at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number no smaller than ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{text!r} must be {minimum} or more")
        return value

    return parse


_positive_int = _int_at_least(1)
_retries_arg = _int_at_least(0)


def _connections_arg(text: str) -> int | str:
    return "auto" if text == "auto" else _positive_int(text)


def _seconds_arg(text: str) -> float:
    """``--timeout``: a positive, finite number of seconds (what ``timeout=`` accepts)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive number of seconds")
    return value


def _variant_arg(text: str) -> str:
    """``--variant``: checked now with the engine's own parser, so a typo fails before any request."""
    from ._variant import parse_variant

    try:
        parse_variant(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a stream choice; use best, worst, a maximum height (720 or 720p) "
            "or a maximum bandwidth (800k, 2.5M)"
        ) from None
    return text


#: A header name as HTTP defines it (a "token"), so a typo is caught here, not by the server.
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def _header_arg(text: str) -> tuple[str, str]:
    """``-H "Name: value"``, as curl takes it."""
    name, colon, value = text.partition(":")
    name, value = name.strip(), value.strip()
    if not colon or not _HEADER_NAME.fullmatch(name) or any(c in value for c in "\r\n\0"):
        raise argparse.ArgumentTypeError(f'{text!r} is not a header; use "Name: value", e.g. "Cookie: id=abc"')
    return name, value


def _header_dict(pairs: Sequence[tuple[str, str]] | None) -> dict[str, str]:
    """The ``-H`` headers as the ``headers=`` mapping. A name given twice is refused rather
    than one value silently winning (header names are case-insensitive)."""
    headers: dict[str, str] = {}
    seen: set[str] = set()
    for name, value in pairs or ():
        if name.lower() in seen:
            raise _UsageError(f"-H {name!r} is given twice; give each header once")
        seen.add(name.lower())
        headers[name] = value
    return headers


# --------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    # SUPPRESS: a --debug before the command must not be reset by the subcommand's default.
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show tracebacks and debug logs")
    parser = _Parser(
        prog="vidnb",
        description="Download video safely: resumable, verified, never half-written.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    parser.add_argument("--version", action="version", version=f"vidnb {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_get(sub, common)

    info = sub.add_parser(
        "info",
        parents=[common],
        help="show what a server says about a URL, or what a video file on disk holds",
        description="For a URL: ask the server (HEAD, then the first 1 KiB for the format) and print size, "
        "type, final URL, range support and the sniffed format, without downloading. For a file on disk: "
        "its container, codecs, duration, size, frame rate and whether browsers play it as it is.",
    )
    info.add_argument("url", metavar="URL_OR_PATH")
    _add_request_options(info)

    demo = sub.add_parser("demo", parents=[common],
                          help="serve the bundled sample on 127.0.0.1, download it, verify it")
    demo.add_argument("--dest", default="vidnb-demo", help="folder to save into (default: %(default)s)")
    demo.add_argument("--webm", action="store_true", help="use the WebM sample instead of the MP4")
    demo.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    return parser


def _add_get(sub: argparse._SubParsersAction[_Parser], common: _Parser) -> None:
    get = sub.add_parser(
        "get",
        parents=[common],
        help="download one or many videos (resumable; re-running skips what is done)",
        description="Download videos. Finished files are skipped and .part files resumed, so the same "
        "command can be run again after a failure or Ctrl-C.",
        epilog=GET_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    get.add_argument("urls", nargs="*", metavar="URL", help="http(s) URLs to download")
    get.add_argument("-o", "--output", metavar="PATH", default=".",
                     help="folder to save into (default: the current folder); "
                     "a file path when there is exactly one URL")
    get.add_argument("-i", "--input", metavar="MANIFEST", help="read URLs (and filenames) from a text or CSV file")
    get.add_argument("-j", "--jobs", type=_positive_int, default=8, metavar="CONCURRENCY",
                     help="downloads at a time (default: %(default)s)")
    get.add_argument("-x", "--connections", type=_connections_arg, default=None, metavar="CONNECTIONS",
                     help="connections per file, using byte ranges (a number or 'auto'; default: 1)")
    get.add_argument("--sha256", metavar="HEX", help="expected sha256 of the file (one URL only)")
    get.add_argument("--retries", type=_retries_arg, default=5, metavar="N",
                     help="retries on network errors, timeouts, 408/429/5xx (default: %(default)s)")
    get.add_argument("--overwrite", action="store_true", help="download again files that already exist")
    get.add_argument("--no-resume", action="store_true",
                     help="fetch from byte 0 even when a .part of an earlier run is there")
    # --max-size was the first name; it stays so existing scripts keep working.
    get.add_argument("--max-bytes", "--max-size", dest="max_bytes", type=_size_arg, metavar="SIZE",
                     help="refuse files larger than this: 500M, 2G, 1.5GiB (binary), 700MB (decimal), or bytes")
    get.add_argument("--limit-rate", dest="max_rate", type=_rate_arg, metavar="RATE",
                     help="at most this many bytes per second, all downloads of the command together: "
                     "500K, 5M (binary), 2MB (decimal), or bytes")
    get.add_argument("--any-type", action="store_true",
                     help="save the body even when it does not look like a video (an HTML page, say)")
    get.add_argument("--no-remux", action="store_true",
                     help="keep an HLS stream exactly as served (a .ts, and its audio in a file of its own) "
                     "instead of one MP4")
    # --variant was the first name; it stays so existing scripts keep working.
    get.add_argument("--quality", "--variant", dest="quality", type=_variant_arg, metavar="CHOICE",
                     help="which stream of an HLS master playlist or format of a web page: best (default), "
                     "worst, a maximum height (720, 720p) or a maximum bandwidth (800k, 2.5M)")
    get.add_argument("--format", dest="format", metavar="SELECTOR",
                     help="for web pages: a yt-dlp format selector, e.g. 'bv*[height<=480]+ba/b'")
    get.add_argument("--item", type=int, metavar="N",
                     help="for a web page showing several videos: download the N-th (1 for the first)")
    _add_request_options(get)
    get.add_argument("--names", choices=("url", "server"), default="url",
                     help="name files without a given filename from the URL (default) or as the server says")
    get.add_argument("-q", "--quiet", action="store_true", help="no progress bars and no summary")


def _add_request_options(command: argparse.ArgumentParser) -> None:
    """What every request of ``get`` and ``info`` carries: cookies or tokens, and how long to wait."""
    command.add_argument("-H", "--header", dest="headers", action="append", type=_header_arg, metavar="HEADER",
                         help="send this request header, as \"Name: value\" (repeatable), e.g. -H 'Cookie: id=abc'")
    command.add_argument("--timeout", type=_seconds_arg, metavar="SECONDS",
                         help="give up connecting, or waiting for the next bytes, after this long (default: 30 s "
                         "to connect, 60 s per read; never a limit on the whole download)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version (0) and usage errors (2)
        return int(exc.code or 0)
    # Imported once the arguments are read: `vidnb --version` and `--help` need no engine
    # (and no aiohttp), and every command imports these anyway.
    from ._errors import VidnbError
    from ._runner import Stopped

    debug = bool(getattr(args, "debug", False))
    logging.basicConfig(level=logging.WARNING, format="vidnb: %(message)s")
    if debug:
        logging.getLogger("vidnb").setLevel(logging.DEBUG)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    commands: dict[str, Callable[[argparse.Namespace], int]] = {"get": _get, "info": _info, "demo": _demo}
    try:
        return commands[args.command](args)
    except BrokenPipeError:
        # stdout went away (`vidnb get ... | head`): stop quietly, and keep Python from complaining at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED
    except KeyboardInterrupt:
        return _interrupted(EXIT_INTERRUPTED, None)
    except Stopped as exc:  # SIGTERM, SIGHUP: a SystemExit, which `except Exception` would not see
        return _interrupted(128 + exc.signum, signal.Signals(exc.signum).name)
    except _UsageError as exc:
        if debug:
            raise
        _print_error(exc)
        return EXIT_USAGE
    except VidnbError as exc:
        if debug:
            raise
        _print_error(exc)
        return EXIT_FAILED
    except Exception as exc:  # noqa: BLE001 - the promise is one line, never a traceback
        if debug:
            raise
        _print_error(f"{type(exc).__name__}: {exc} (run with --debug for details)")
        return EXIT_FAILED


def _interrupted(code: int, signame: str | None) -> int:
    """Say in one line that the command was stopped and how to resume; return ``code``."""
    from ._runner import left_running

    why = f" ({signame})" if signame else ""
    try:
        print(f"vidnb: interrupted{why}; partial files are kept: run the same command again to resume",
              file=sys.stderr, flush=True)
        if sys.stdout is not None:
            sys.stdout.flush()
    except OSError:
        # After SIGHUP the terminal may be gone: the exit status must stay 129, not become 1,
        # or 120 when Python cannot flush at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                os.dup2(devnull, stream.fileno())
    if left_running():
        # A download outlived its grace after the signal: ending here spares it being closed,
        # half way, by interpreter shutdown (which would run its clean-up on a closed loop).
        os._exit(code)
    return code


class _UsageError(Exception):
    """Bad input found before anything was downloaded: exit code 2."""


# --------------------------------------------------------------------------- get


def _get(args: argparse.Namespace) -> int:
    from ._fmt import human_bytes, human_duration
    from ._many import download_many
    from ._plan import one_line as error_line
    from ._plan import read_manifest
    from ._runner import run_sync

    items: list[Any] = list(args.urls)
    try:
        if args.input:
            items += read_manifest(args.input)
    except ValueError as exc:
        raise _UsageError(exc) from None
    if not items:
        raise _UsageError("give at least one URL, or a manifest with -i (see 'vidnb get --help')")
    if args.sha256 and len(items) != 1:
        raise _UsageError("--sha256 needs exactly one URL; use a CSV manifest with a sha256 column for several")

    out = args.output
    dest_dir: str = out
    if len(items) == 1 and not out.endswith(("/", os.sep)) and not Path(out).is_dir() and out != ".":
        # One URL and a path that is not a folder: that path is the file.
        entry = items[0]
        url, digest = (entry, None) if isinstance(entry, str) else (entry[0], entry[2])
        dest_dir, name = str(Path(out).parent), Path(out).name
        items = [(url, name, args.sha256 or digest)]
    elif args.sha256:
        entry = items[0]
        items = [(entry, None, args.sha256)] if isinstance(entry, str) else [(entry[0], entry[1], args.sha256)]

    options = _download_options(args)
    bars = not args.quiet and sys.stderr is not None and sys.stderr.isatty()
    write = _writer(bars)

    def finished(outcome: Any) -> None:
        r = outcome.result
        if r is None:
            write(f"vidnb: failed: {outcome.url}: {_cli_words(error_line(outcome.error))}", sys.stderr)
            return
        note = "  already there" if r.skipped else ("  resumed" if r.resumed else "")
        write(f"{r.path}  {human_bytes(r.size)}  {r.elapsed:.2f} s{note}", sys.stdout)

    try:
        batch = run_sync(
            download_many(
                items, dest_dir, concurrency=args.jobs, progress=bars, names=args.names, on_item=finished, **options
            )
        )
    except (ValueError, TypeError) as exc:  # the plan was refused before any request
        raise _UsageError(exc) from None
    if not args.quiet:
        skipped = sum(1 for r in batch.results if r.skipped)
        there = f" ({skipped} already there)" if skipped else ""
        print(
            f"vidnb: {len(batch.ok)} done{there}, {len(batch.failed)} failed, "
            f"{human_bytes(batch.downloaded_bytes)} in {human_duration(batch.elapsed)}",
            file=sys.stderr,
        )
    return EXIT_FAILED if batch.failed else EXIT_OK


def _download_options(args: argparse.Namespace) -> dict[str, Any]:
    """The ``get`` flags as the keyword options of :func:`vidnb.download`."""
    options: dict[str, Any] = {
        "retries": args.retries,
        "overwrite": args.overwrite,
        "resume": not args.no_resume,
        "require_video": not args.any_type,
        "max_bytes": args.max_bytes,
        "max_rate": args.max_rate,
        "headers": _header_dict(args.headers),
        "timeout": args.timeout,
        "remux": not args.no_remux,
    }
    # Left out when not given, so the engine's own defaults apply (one place defines them).
    if args.connections is not None:
        options["connections"] = args.connections
    if args.quality is not None:
        options["quality"] = args.quality
    for name in ("format", "item"):
        if getattr(args, name, None) is not None:
            options[name] = getattr(args, name)
    return options


def _writer(bars: bool) -> Callable[[str, Any], None]:
    if not bars:
        def plain(line: str, stream: Any) -> None:
            print(line, file=stream, flush=stream is sys.stderr)
        return plain
    from tqdm.auto import tqdm

    def above_bars(line: str, stream: Any) -> None:
        tqdm.write(line, file=stream)  # clears and redraws the bars around the line
    return above_bars


# --------------------------------------------------------------------------- info


def _info(args: argparse.Namespace) -> int:
    from ._runner import run_sync
    from ._urls import validate_url

    if "://" not in args.url:
        if os.path.exists(args.url):
            return _info_file(args.url)
        raise _UsageError(f"{args.url} is neither a file on disk nor an http:// or https:// URL.")
    try:
        url = validate_url(args.url)
    except ValueError as exc:
        raise _UsageError(exc) from None
    headers = _header_dict(args.headers)
    rows = run_sync(probe(url, headers, args.timeout))
    for label, value in rows:
        print(f"{label:<14}{value}")
    if any(label == "format" and ("an HTML page" in v or "a DASH manifest" in v) for label, v in rows):
        _info_page(url, headers, args.timeout)
    return EXIT_OK


def _info_page(url: str, headers: Mapping[str, str], timeout: float | None) -> None:
    """``vidnb info PAGE``: what yt-dlp's extractors find on the page, one row per format."""
    from ._errors import NotAVideoError, SeveralVideosError
    from ._extract import extract
    from ._fmt import human_duration
    from ._options import make_options
    from ._runner import run_sync

    try:
        media = run_sync(extract(url, make_options(headers=headers, timeout=timeout)))
    except SeveralVideosError as exc:
        print(f"\n{exc}")
        return
    except NotAVideoError as exc:  # no video on the page, or yt-dlp missing: the page was described
        print(f"{'video':<14}{exc}")
        return
    print(f"{'title':<14}{media.title or '?'}")
    print(f"{'duration':<14}{human_duration(media.duration)}")
    print(f"{'extractor':<14}{media.extractor}")
    print(f"\n{'format':<16}{'resolution':<12}{'codecs':<28}{'protocol':<20}{'bitrate'}")
    for f in media.formats:
        rate = f"{f.tbr:.0f}k" if f.tbr else "?"
        print(f"{f.format_id:<16}{f.resolution:<12}{f.codecs:<28}{f.protocol:<20}{rate}")


def _info_file(path: str) -> int:
    """``vidnb info FILE``: the probe of a video on disk."""
    from ._fmt import human_bytes
    from ._probe import probe as probe_file

    info = probe_file(path)
    size = f"{human_bytes(info.size)} ({info.size:,} bytes)"
    rows = [
        ("path", str(info.path)),
        ("container", info.container),
        ("video", f"{info.video_codec or 'none'}"
         + (f", {info.width}x{info.height}" if info.width else "")
         + (f", {info.fps:.3g} fps" if info.fps else "")),
        ("audio", info.audio_codec or "none"),
        ("duration", f"{info.duration:.2f} s" if info.duration is not None else "unknown"),
        ("bit rate", f"{info.bit_rate / 1000:.0f} kb/s" if info.bit_rate else "unknown"),
        ("size", size),
        ("plays", "in browsers as it is" if info.playable else "after vidnb.make_playable (remux or transcode)"),
    ]
    for label, value in rows:
        print(f"{label:<14}{value}")
    return EXIT_OK


#: HEAD answers that mean "ask with GET instead" (405/501: not supported; 403: presigned GET-only URLs).
HEAD_REFUSED = (403, 405, 501)


async def probe(
    url: str, headers: Mapping[str, str] | None = None, timeout: float | None = None
) -> list[tuple[str, str]]:
    """Ask the server about ``url``: HEAD, then the first KiB with a ranged GET to sniff the format.

    ``headers`` go with both requests; ``timeout`` is the ``timeout=`` option of a download.
    Returns ``(label, value)`` rows for display.
    """
    import asyncio

    import aiohttp
    from multidict import CIMultiDict

    from . import _http
    from ._errors import HTTPStatusError, raise_translated
    from ._headers import MAX_REDIRECTS
    from ._options import client_timeout
    from ._sniff import SNIFF_BYTES
    from ._urls import redact_url

    shown = redact_url(url)
    sent = dict(headers or {})
    wait = client_timeout(timeout)
    try:
        async with _http.new_session() as aio:
            session = _http.Session(aio)
            # Connection: close, because some servers send a body after a HEAD answer, which would
            # poison the connection for the GET that follows.
            head_req = {**sent, "Accept-Encoding": "identity", "Connection": "close"}
            try:
                async with aio.head(
                    url, headers=head_req, timeout=_http.aiohttp_timeout(wait), allow_redirects=True,
                    max_redirects=MAX_REDIRECTS,
                ) as resp:
                    head_status, head_headers, final = resp.status, resp.headers.copy(), str(resp.url)
                    reason = resp.reason or ""
            except aiohttp.ClientResponseError as exc:
                # A malformed HEAD answer (a body after it, say): HEAD is only a shortcut; GET decides.
                log.debug("HEAD %s failed (%s); asking with GET", shown, exc)
                head_status, head_headers, final, reason = 0, CIMultiDict(), url, ""
            if head_status >= 400 and head_status not in HEAD_REFUSED:  # 0: HEAD broke, see above
                raise HTTPStatusError(head_status, redact_url(final), reason)
            async with _http.get(session, url, sent, wait, byte_range=(0, SNIFF_BYTES - 1)) as resp:
                get_status, get_headers, final = resp.status, resp.headers.copy(), str(resp.url)
                body = await _http.read_head(resp)
                _http.drop(resp)  # the rest of the body is not wanted
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
        raise_translated(exc, url=shown)
    return _info_rows(url, final, head_status, head_headers, get_status, get_headers, body)


def _info_rows(
    url: str,
    final: str,
    head_status: int,
    head_headers: Mapping[str, str],
    get_status: int,
    get_headers: Mapping[str, str],
    body: bytes,
) -> list[tuple[str, str]]:
    """What ``vidnb info`` prints, from the HEAD answer (status 0: it broke) and the ranged GET."""
    from ._fmt import human_bytes
    from ._headers import content_range
    from ._sniff import SNIFF_BYTES, describe_non_video, sniff
    from ._urls import redact_url, server_filename

    head_ok = 200 <= head_status < 300
    meta = head_headers if head_ok else get_headers
    size: int | None
    if get_status == 206:
        size = content_range(get_headers.get("Content-Range"))[1]
    else:
        size = int(get_headers["Content-Length"]) if get_headers.get("Content-Length", "").isdigit() else None
    if size is None and head_ok and head_headers.get("Content-Length", "").isdigit():
        size = int(head_headers["Content-Length"])
    ctype = meta.get("Content-Type") or get_headers.get("Content-Type")
    head = bytes(body[:SNIFF_BYTES])
    fmt = sniff(head)
    name = server_filename(
        final, meta.get("Content-Disposition") or get_headers.get("Content-Disposition"),
        fmt.extension if fmt else None,
    )

    rows = [("url", redact_url(url))]
    if final != url:
        rows.append(("final url", redact_url(final)))
    if head_ok:
        rows.append(("status", f"{head_status} (HEAD)"))
    else:
        why = f"refused with {head_status}" if head_status else "answer was malformed"
        rows.append(("status", f"{get_status} (ranged GET; HEAD {why})"))
    known = f"{human_bytes(size)} ({size:,} bytes)" if size is not None else "unknown (no Content-Length)"
    rows.append(("size", known))
    rows.append(("type", ctype or "unknown"))
    if get_status == 206:
        ranges = "yes (resumable; several connections possible)"
    elif head_headers.get("Accept-Ranges", "").lower() == "bytes" and get_status != 200:
        ranges = "announced, not checked"
    else:
        ranges = "no (a broken download starts again from zero)"
    rows.append(("ranges", ranges))
    rows.append(("format", f"{fmt.name} (sniffed)" if fmt else f"not a video: {describe_non_video(head, ctype)}"))
    rows.append(("name", name))
    for label, key in (("etag", "ETag"), ("last-modified", "Last-Modified")):
        value = meta.get(key)
        if value:
            rows.append((label, value))
    return rows


# --------------------------------------------------------------------------- demo


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    run_demo(args.dest, progress=not args.quiet, name="sample.webm" if args.webm else "sample.mp4")
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
