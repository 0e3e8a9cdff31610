"""Reading what a video file holds with PyAV: :func:`probe`, and the opening every media step shares.

PyAV (``av``) is imported inside the functions, so ``import vidnb`` never loads it; where
it is missing each of them raises :class:`~vidnb.MissingDependencyError`. Opening a file
reads its headers and a little of its packets (0.7-17 ms): nothing is decoded.

Three things PyAV reports that are easy to get wrong, and how they are read here:
the container's ``start_time`` is often not 0 (MPEG-TS, HLS recordings, ``-output_ts_offset``),
so durations are the container's (end minus start) and never a stream's end timestamp;
``stream.frames`` is 0 for TS, MKV, FLV and WMV, so it is not used; ``stream.duration``
is None for MKV and FLV, so the container's duration is used.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Union

from ._errors import DestinationError, MissingDependencyError, NotAVideoError
from ._sniff import SNIFF_BYTES, describe_non_video, sniff
from ._storage import open_remote, remote_url
from ._videoinfo import VideoInfo, browser_playable, container_name

if TYPE_CHECKING:
    import av.audio.stream
    import av.container
    import av.video.stream

__all__ = ["probe", "require_av", "open_video", "main_streams", "file_url", "PathArg"]

PathArg = Union[str, "os.PathLike[str]"]

# FFmpeg demuxers of still images: a picture has a "video" stream, but it is not a video.
_IMAGE_DEMUXERS = ("image2", "gif", "webp", "apng")


def require_av() -> None:
    """Import PyAV, or raise :class:`~vidnb.MissingDependencyError` saying how to install it."""
    try:
        import av  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError("av", "PyAV") from exc


def file_url(path: PathArg) -> str:
    """``path`` as FFmpeg must be given it: with ``file:``, or a name such as ``rtmp:x.mp4`` would open a protocol."""
    return "file:" + os.fspath(path)


def _read_head(path: Path) -> bytes:
    """The file's first bytes; a file that cannot be read is a :class:`DestinationError`."""
    try:
        with open(path, "rb") as f:
            return f.read(SNIFF_BYTES)
    except OSError as exc:
        if isinstance(exc, FileNotFoundError):
            message = f"{path} does not exist: check the path."
        elif isinstance(exc, IsADirectoryError):
            message = f"{path} is a folder, not a video file."
        else:
            message = f"Cannot read {path}: {exc.strerror or exc}."
        err = DestinationError(message, path)
        err.errno = exc.errno  # ENOENT for a missing file, as an OSError would say
        raise err from exc


def open_video(path: PathArg) -> tuple[av.container.InputContainer, bytes]:
    """Open ``path`` with PyAV, checked to hold a video; return the container and the file's head.

    Raises
    ------
    MissingDependencyError
        PyAV is not installed.
    DestinationError
        The file does not exist or cannot be read.
    NotAVideoError
        It is something else (an HTML page, audio only, a picture, random bytes), said in the message.
    """
    require_av()
    import av

    p = Path(path)
    head = _read_head(p)
    try:
        container = av.open(file_url(p), metadata_errors="replace")
    except (av.error.InvalidDataError, av.error.EOFError) as exc:
        raise NotAVideoError(f"{p} is not a video: it is {_what(head)}.") from exc
    except av.error.FFmpegError as exc:
        fmt = sniff(head)
        what = f"a damaged {fmt.name} file" if fmt else _what(head)
        raise NotAVideoError(f"{p} cannot be read as a video: it is {what} ({exc}).") from exc
    try:
        _check_video(container, p, head)
    except BaseException:
        container.close()
        raise
    return container, head


def _what(head: bytes) -> str:
    what = describe_non_video(head, None).replace("; no Content-Type", "")  # a file has none
    return "an empty file" if what == "empty body" else what


def _check_video(container: av.container.InputContainer, path: Path, head: bytes) -> None:
    demuxer = container.format.name
    video, audio = main_streams(container)
    if demuxer in _IMAGE_DEMUXERS or demuxer.endswith("_pipe"):
        what = describe_non_video(head, None)
        picture = what if what.startswith("an image") else f"a picture ({demuxer.removesuffix('_pipe')})"
        raise NotAVideoError(f"{path} is not a video: it is {picture}.")
    if video is None:
        if audio is not None:
            where = container_name(demuxer, container.metadata.get("major_brand"))
            raise NotAVideoError(f"{path} is not a video: it is audio only ({audio.codec.canonical_name} in {where}).")
        raise NotAVideoError(f"{path} is not a video: it has no video stream ({demuxer}).")


def main_streams(
    container: av.container.InputContainer,
) -> tuple[av.video.stream.VideoStream | None, av.audio.stream.AudioStream | None]:
    """The video stream to show and the audio stream to hear: FFmpeg's best of each.

    A cover picture (an MP3's or M4A's artwork, an "attached picture") is not a video stream.
    """
    import av.stream

    videos = [s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic]
    best = container.streams.best("video") if videos else None
    video = next((s for s in videos if s is best), videos[0] if videos else None)
    audios = list(container.streams.audio)
    best = container.streams.best("audio") if audios else None
    audio = next((s for s in audios if s is best), audios[0] if audios else None)
    return video, audio


def probe(path: PathArg, *, storage_options: Mapping[str, Any] | None = None) -> VideoInfo:
    """What a video file holds: container, duration, size, codecs, and whether browsers play it.

    Reads the headers only (a few milliseconds, nothing is decoded). An object on object
    storage (``"s3://bucket/clip.mp4"``, a remote ``DownloadResult.path``) is read through
    fsspec: only the byte ranges the headers need are fetched.

    Parameters
    ----------
    path : str or os.PathLike
        The file, or the URL of an object.
    storage_options : mapping, optional
        For an object's URL: passed to fsspec (endpoint, credentials).

    Returns
    -------
    VideoInfo

    Raises
    ------
    MissingDependencyError
        PyAV (``pip install av``) is not installed.
    DestinationError
        The file does not exist (``errno`` is ``ENOENT``) or cannot be read.
    NotAVideoError
        The file is not a video: an HTML page, audio only, a picture, unrecognised bytes.

    Examples
    --------
    >>> info = vidnb.probe("videos/clip.ts")                  # doctest: +SKIP
    >>> info                                                   # doctest: +SKIP
    <VideoInfo clip.ts: ts h264/aac 1280x720 30 fps 10.0 s 8.1 MiB, browsers cannot play it>
    >>> info.duration, info.playable                           # doctest: +SKIP
    (10.0, False)
    """
    url = remote_url(path)
    if url is not None:
        return _probe_remote(url, storage_options)
    container, head = open_video(path)
    try:
        return _info(Path(path), container, head, os.path.getsize(path))
    finally:
        container.close()


def _probe_remote(url: str, storage_options: Mapping[str, Any] | None) -> VideoInfo:
    require_av()
    import av

    f, size = open_remote(url, storage_options)
    with f:
        head = f.read(SNIFF_BYTES)
        f.seek(0)
        container = _open_object(av, f, url, head)
        try:
            _check_video(container, Path(url), head)
            return _info(Path(url), container, head, size)
        finally:
            container.close()


def _open_object(av: Any, f: IO[bytes], url: str, head: bytes) -> av.container.InputContainer:
    try:
        return av.open(f, metadata_errors="replace")  # type: ignore[no-any-return]
    except (av.error.InvalidDataError, av.error.EOFError) as exc:
        raise NotAVideoError(f"{url} is not a video: it is {_what(head)}.") from exc
    except av.error.FFmpegError as exc:
        raise NotAVideoError(f"{url} cannot be read as a video ({exc}).") from exc


def _info(path: Path, container: av.container.InputContainer, head: bytes, size: int) -> VideoInfo:
    video, audio = main_streams(container)
    assert video is not None  # open_video checked
    sniffed = sniff(head)
    brand = container.metadata.get("major_brand") or ("qt  " if sniffed and sniffed.name == "mov" else None)
    doctype = "webm" if sniffed and sniffed.name == "webm" else "matroska"
    name = container_name(container.format.name, brand, doctype)
    vcodec = video.codec.canonical_name
    acodec = audio.codec.canonical_name if audio is not None else None
    start = container.start_time / 1e6 if container.start_time is not None else 0.0
    rate = video.average_rate or video.guessed_rate
    return VideoInfo(
        path=path,
        container=name,
        duration=_duration(container),
        width=video.codec_context.width,
        height=video.codec_context.height,
        fps=float(rate) if rate else None,
        video_codec=vcodec,
        audio_codec=acodec,
        bit_rate=container.bit_rate or None,
        size=size,
        start_time=start,
        playable=browser_playable(name, vcodec, acodec),
    )


def _duration(container: av.container.InputContainer) -> float | None:
    if container.duration is not None and container.duration > 0:
        return container.duration / 1e6
    # Some files say nothing at the container level: the longest stream, from its own start.
    ends = [
        float((s.duration) * s.time_base)
        for s in container.streams
        if s.duration is not None and s.time_base is not None
    ]
    return max(ends) if ends else None
