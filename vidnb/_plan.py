"""The plan of a batch: its items read and checked, each one's file decided, before any request.

:func:`plan_jobs` turns the input of :func:`vidnb.download_many` (URLs, ``(url, filename)``
pairs, ``(url, filename, sha256)`` triples or a manifest file) into one :class:`Job` per
item, and refuses the whole batch at once, listing every bad item, when a URL is bad, a URL
is repeated or two items would write the same file. The local run and the cluster run both
plan with it, so bad input fails the same way whichever runs it.

Naming rule (decides what can be checked before starting). An item's file is:

1. its explicit filename (a pair, a manifest column), relative to ``dest_dir``;
2. else, with ``names="url"`` (the default), the last segment of the URL path when it has
   an extension (``.../clip.mp4?sig=x`` -> ``clip.mp4``): known before starting, so a
   re-run skips it without any request;
3. else the server decides (Content-Disposition, else the URL, plus the sniffed extension),
   as :func:`vidnb.download` does for a folder. Such names are known only after the first
   response: a clash is then caught when it happens (the engine's per-destination lock means
   the second item finds the first one's finished file; it is reported as a failure instead
   of being passed off as its own file, see :func:`vidnb._outcomes.claim`), and a re-run
   costs one request per such item.

``names="server"`` uses rule 3 for every item without an explicit filename.

Names of rules 2 and 3 are cut to :data:`vidnb._urls.SERVER_NAME_MAX_BYTES` (extension kept),
so that the ``.part`` and resume record beside them fit the file system's name limit too; an
explicit filename is the user's and is used as given.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any, Literal, Union

from ._options import check_sha256
from ._storage import join_url
from ._urls import choose_filename, validate_url

__all__ = [
    "Job",
    "ManifestEntry",
    "Item",
    "Names",
    "PathLike",
    "MAX_LISTED",
    "read_manifest",
    "normalise_items",
    "plan_jobs",
    "listing",
    "one_line",
    "in_folder",
]

PathLike = Union[str, "os.PathLike[str]"]
Item = Union[str, Sequence[Any]]
Names = Literal["url", "server"]
#: ``(url, filename or None, sha256 or None, source)``: one item as read, not yet checked.
ManifestEntry = tuple[str, str | None, str | None, str]

#: Errors listed in one message (a manifest with 10 000 bad lines should not print them all).
MAX_LISTED = 10


@dataclass(frozen=True)
class Job:
    """One checked item of a batch: what to fetch and where it goes.

    Attributes
    ----------
    index : int
        Position in the input (0-based).
    url : str
        The checked URL.
    dest : Path or str
        The file when ``named``, else the folder (the server names the file); a URL string
        for a destination on object storage (a folder URL ends with ``/``).
    named : bool
        Whether ``dest`` is the file, known before any request.
    sha256 : str or None
        The item's expected digest, lowercase hex.
    source : str
        Where the item came from ("item 3", "list.csv line 7"), for messages.
    item : int or None
        Which video of a web page that shows several (1 for the first).

    Examples
    --------
    >>> Job(0, "https://example.com/a.mp4", Path("videos/a.mp4"), True, None, "item 0").named
    True
    """

    index: int
    url: str
    dest: Path | str
    named: bool
    sha256: str | None
    source: str
    #: For one of several videos of a web page: which (``item=`` of :func:`vidnb.download`).
    item: int | None = None


def read_manifest(path: PathLike) -> list[ManifestEntry]:
    """Read a manifest: ``(url, filename or None, sha256 or None, source)`` per item.

    Two formats, chosen by the content (a ``.csv`` suffix forces CSV):

    - text: one URL per line, optionally followed by whitespace and a filename; blank
      lines and lines starting with ``#`` are ignored;
    - CSV: a header row with a ``url`` column, optional ``filename`` and ``sha256``
      columns; empty rows and rows whose url starts with ``#`` are ignored.

    Examples
    --------
    >>> vidnb.read_manifest("videos.csv")[0]  # doctest: +SKIP
    ('https://example.com/a.mp4', 'intro.mp4', None, 'videos.csv line 2')
    """
    p = Path(os.fspath(path)).expanduser()
    try:
        text = p.read_text(encoding="utf-8-sig")  # -sig: spreadsheets write a BOM
    except FileNotFoundError:
        raise ValueError(f"manifest {p} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read manifest {p}: {exc}") from None
    first = next((ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")), "")
    header = [h.strip().lower() for h in next(csv.reader([first]), [])]
    if p.suffix.lower() == ".csv" or ("url" in header and len(header) > 1) or first.strip().lower() == "url":
        return _read_csv(text, p.name)
    items: list[ManifestEntry] = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        # URLs cannot contain raw whitespace, so anything after the first run of it is a name.
        url, _, name = line.partition(" ") if " " in line else line.partition("\t")
        items.append((url.strip(), name.strip() or None, None, f"{p.name} line {n}"))
    return items


def _read_csv(text: str, label: str) -> list[ManifestEntry]:
    # Comment lines are dropped before parsing so they cannot be taken for the header.
    lines = [(n, ln) for n, ln in enumerate(text.splitlines(), 1) if not ln.lstrip().startswith("#")]
    reader = csv.reader(io.StringIO("\n".join(ln for _, ln in lines)))
    rows = [(lines[reader.line_num - 1][0] if reader.line_num else 0, row) for row in reader]
    rows = [(n, r) for n, r in rows if any(c.strip() for c in r)]
    if not rows:
        return []
    header = [h.strip().lower() for h in rows[0][1]]
    if "url" not in header:
        raise ValueError(f"{label}: the CSV header has no 'url' column (it has {', '.join(header) or 'nothing'})")
    col: dict[str, int] = {name: header.index(name) for name in ("url", "filename", "sha256") if name in header}

    def cell(row: list[str], name: str) -> str | None:
        i = col.get(name)
        value = row[i].strip() if i is not None and i < len(row) else ""
        return value or None

    items: list[ManifestEntry] = []
    for n, row in rows[1:]:
        url = cell(row, "url")
        if url is None:
            raise ValueError(f"{label} line {n}: no url")
        items.append((url, cell(row, "filename"), cell(row, "sha256"), f"{label} line {n}"))
    return items


def normalise_items(items: Iterable[Item] | PathLike) -> list[ManifestEntry]:
    """Every accepted input shape as ``(url, filename, sha256, source)`` entries, unchecked.

    A string or path is a manifest (or one URL, when it has ``://``); otherwise each item
    is a URL, a ``(url, filename)`` pair, a ``(url, filename, sha256)`` triple, or an
    entry of :func:`read_manifest` (whose 4th field says where it came from).

    Examples
    --------
    >>> normalise_items(["https://example.com/a.mp4", ("https://example.com/b", "b.mp4")])
    [('https://example.com/a.mp4', None, None, 'item 0'), ('https://example.com/b', 'b.mp4', None, 'item 1')]
    """
    if isinstance(items, (str, os.PathLike)):
        raw = os.fspath(items)
        if "://" in raw:  # one URL given where a list was expected: be kind
            return [(raw, None, None, "item 0")]
        return read_manifest(raw)
    if isinstance(items, (bytes, bytearray)):
        raise TypeError("items must be URLs, (url, filename) pairs or a manifest path, not bytes")
    out: list[ManifestEntry] = []
    for i, item in enumerate(items):
        if isinstance(item, str):
            out.append((item, None, None, f"item {i}"))
        elif isinstance(item, (tuple, list)) and len(item) in (2, 3, 4):
            url, name = item[0], item[1]
            digest = item[2] if len(item) >= 3 else None
            source = str(item[3]) if len(item) == 4 else f"item {i}"
            out.append((url, None if name is None else os.fspath(name), digest, source))
        else:
            raise TypeError(
                f"item {i} is {item!r}; give a URL, a (url, filename) pair or a (url, filename, sha256) triple"
            )
    return out


def in_folder(folder: Path | str, name: str) -> Path | str:
    """``name`` (a relative path) inside ``folder``: a local folder, or a folder URL on object storage.

    >>> in_folder("s3://bucket/videos/", "a.mp4"), in_folder(Path("videos"), "a.mp4")
    ('s3://bucket/videos/a.mp4', PosixPath('videos/a.mp4'))
    """
    return join_url(folder, PurePath(name).as_posix()) if isinstance(folder, str) else folder / name


def _explicit_path(dest_dir: Path | str, name: str) -> Path | str:
    rel = PurePath(name)
    if not name.strip() or rel.is_absolute() or ".." in rel.parts or rel.name in ("", "."):
        raise ValueError(f"filename {name!r} must be a relative path inside the destination folder")
    return in_folder(dest_dir, name)


def _destination(url: str, name: str | None, dest_dir: Path | str, names: Names) -> tuple[Path | str, bool]:
    """The naming rule: the item's file and True, or the folder and False when the server names it."""
    if name is not None:
        return _explicit_path(dest_dir, name), True
    guess = choose_filename(url, None) if names == "url" else None
    if guess is not None and Path(guess).suffix:
        return in_folder(dest_dir, guess), True
    # A folder URL ends with "/": that is how the engine tells a folder from an object.
    return (dest_dir.rstrip("/") + "/" if isinstance(dest_dir, str) else dest_dir), False


def plan_jobs(items: Iterable[Item] | PathLike, dest_dir: Path | str, names: Names = "url") -> list[Job]:
    """Check every item before any request and decide its file; raise ``ValueError`` naming each bad one.

    Refused: bad URLs, bad digests, filenames that leave ``dest_dir``, a URL listed twice,
    and two items whose files (known in advance) are the same.

    Examples
    --------
    >>> [j.dest for j in plan_jobs(["https://example.com/a.mp4"], Path("videos"))]
    [PosixPath('videos/a.mp4')]
    """
    problems: list[str] = []
    jobs: list[Job] = []
    seen_urls: dict[str, str] = {}
    seen_paths: dict[str, str] = {}
    for index, (raw_url, name, digest, source) in enumerate(normalise_items(items)):
        try:
            url = validate_url(raw_url)
            digest = check_sha256(digest)
            dest, named = _destination(url, name, dest_dir, names)
        except ValueError as exc:  # InvalidURLError is a ValueError too
            problems.append(f"{source}: {one_line(exc)}")
            continue
        if url in seen_urls:
            problems.append(f"{source}: {url} is already listed ({seen_urls[url]})")
            continue
        seen_urls[url] = source
        if named:
            key = dest if isinstance(dest, str) else os.path.normcase(os.path.abspath(dest))
            if key in seen_paths:
                problems.append(
                    f"{source}: {url} would be saved as {dest}, like {seen_paths[key]}; give it its own filename"
                )
                continue
            seen_paths[key] = source
        jobs.append(Job(index, url, dest, named, digest, source))
    if problems:
        raise ValueError(
            f"{len(problems)} problem{'s' if len(problems) > 1 else ''} in the batch; nothing was downloaded:\n  "
            + listing(problems)
        )
    return jobs


def listing(lines: list[str], more: str = "") -> str:
    """Up to MAX_LISTED lines, indented, then how many more there were (``more`` is appended to that note).

    Examples
    --------
    >>> print(listing([f"line {i}" for i in range(12)]).splitlines()[-1])
      ... and 2 more
    """
    text = "\n  ".join(lines[:MAX_LISTED])
    if len(lines) > MAX_LISTED:
        text += f"\n  ... and {len(lines) - MAX_LISTED} more{more}"
    return text


def one_line(exc: BaseException | None) -> str:
    """An error's message on one line (its type's name when it has none; "" for None).

    Examples
    --------
    >>> one_line(ValueError("bad\\n  value"))
    'bad value'
    """
    if exc is None:
        return ""
    text = " ".join(str(exc).split())
    return text or type(exc).__name__
