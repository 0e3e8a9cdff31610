"""Files browsers play: :func:`remux` (copy streams into MP4) and :func:`make_playable`.

A video browsers cannot play is most often made of codecs they do play in a container
they do not (H.264/AAC in MPEG-TS, FLV, MKV or QuickTime; VP9/Opus in MKV). Then the
streams are copied into MP4 or WebM as they are, without decoding: seconds even for a
large file. Anything else (MPEG-4 Part 2, WMV, HEVC, MP3-in-AVI, ...) is re-encoded to
VP9/Opus, the pair Chromium, Firefox, Safari 17+ and VS Code's webview all play.

Copying streams has two traps, both handled here: timestamps keep the input's start
offset unless shifted (an MPEG-TS starting at 1.4 s would give an MP4 whose players
show 1.4 s of nothing, and a longer duration), and Matroska leaves the decoding
timestamps of its first B-frame packets unset, which an MP4 cannot take: they are
filled in from the packets that follow. Files are written to ``<dest>.part`` and renamed
onto ``dest`` when complete, so a failure or an interrupt never leaves half a file.
"""

from __future__ import annotations

import heapq
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Union

from ._errors import DestinationError, NotAVideoError
from ._files import part_path, remove_quietly
from ._probe import PathArg, file_url, main_streams, open_video, probe, require_av
from ._progress import ProgressOption, TqdmReporter, Tracker, make_reporter
from ._result import DownloadResult, local_file
from ._videoinfo import PLAYABLE_CODECS, VideoInfo

if TYPE_CHECKING:
    import av.audio.stream
    import av.container
    import av.packet
    import av.stream
    import av.video.stream

__all__ = ["remux", "make_playable", "Transcode"]

log = logging.getLogger("vidnb")

Source = Union[DownloadResult, PathArg]
Transcode = Literal["auto", True, False]
Format = Literal["mp4", "webm"]

#: Containers whose packets carry presentation timestamps that survive a copy. AVI has
#: none for B-frames (FFmpeg makes them up), so its H.264 is re-encoded, not copied.
_COPY_FROM = frozenset({"mp4", "mov", "3gp", "mkv", "webm", "ts", "flv"})
#: Inputs whose start times are closer than this share one clock (HLS renditions do):
#: they are shifted together, keeping their offset to each other.
_SAME_CLOCK = 1.0
# The bar counts milliseconds of media, shown as seconds, at a rate in seconds of media a second.
_MEDIA_BAR = {"unit": "s", "unit_scale": 0.001}
_MEDIA_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total:.1f} s [{elapsed}<{remaining}, {rate_fmt}]"
_MEDIA_FORMAT_UNSIZED = "{desc}: {n:.1f} s [{elapsed}, {rate_fmt}]"


def remux(
    src: PathArg, dest: PathArg, *, audio: PathArg | None = None, progress: ProgressOption = None
) -> Path:
    """Copy a video's streams, without re-encoding, into an MP4 with its index at the front.

    The index (``moov``) first means a browser starts playing, and seeks, before the whole
    file has arrived. Timestamps are shifted so the file starts at 0.

    Parameters
    ----------
    src : str or os.PathLike
        The video: MPEG-TS, MKV, FLV, MOV, MP4, ... with codecs an MP4 holds (H.264, HEVC,
        VP9, AV1; AAC, MP3, Opus, AC-3, ...). Its main video stream and main audio stream
        are copied; subtitles, data and further tracks are not.
    dest : str or os.PathLike
        The MP4 to write; it is replaced if it exists. Written as ``<dest>.part``, renamed
        when complete; on any failure the ``.part`` is removed and ``dest`` is untouched.
    audio : str or os.PathLike, optional
        A separate audio file (M4A, ADTS AAC, MPEG-TS audio: an HLS or DASH audio rendition)
        to use as the audio track instead of ``src``'s own.
    progress : bool, "auto", callable or ProgressReporter, optional
        A bar or callback counting milliseconds of media; None (the default) for none.

    Returns
    -------
    Path
        ``dest``.

    Raises
    ------
    MissingDependencyError
        PyAV is not installed.
    DestinationError, NotAVideoError
        ``src`` (or ``audio``) is missing, or not a video (an audio file for ``audio``).
    ValueError
        A codec an MP4 cannot hold; :func:`vidnb.make_playable` re-encodes such files.

    Examples
    --------
    >>> remux("talk.hls.ts", "talk.mp4", audio="talk.hls.m4a")    # doctest: +SKIP
    PosixPath('talk.mp4')
    """
    dest = Path(dest)
    _write_through_part(dest, lambda part: _copy(Path(src), part, "mp4", audio, _tracker(progress, dest)))
    return dest


def make_playable(
    source: Source,
    dest: PathArg | None = None,
    *,
    transcode: Transcode = "auto",
    progress: ProgressOption = "auto",
) -> Path:
    """A version of a video that browsers play: the file itself, a remuxed copy, or a re-encoded one.

    - Already playable (MP4 H.264/AAC, WebM VP9/Opus, ...; see :attr:`VideoInfo.playable`):
      ``source`` itself is returned and nothing is written.
    - Browser codecs in another container (H.264/AAC in MPEG-TS, MKV, FLV, MOV; VP9/Opus in
      MKV): the streams are copied into MP4 (WebM for VP9/VP8/AV1 with Opus/Vorbis), in
      about the time it takes to read the file.
    - Anything else is re-encoded to VP9/Opus in WebM (libvpx realtime, with a progress
      bar): plays in Chromium, Firefox, Safari 17+ and VS Code.

    A second call finds the result (newer than the source, and playable) and returns it at once.

    Parameters
    ----------
    source : DownloadResult, str or os.PathLike
        The video.
    dest : str or os.PathLike, optional
        Where to write: a file ending in ``.mp4`` or ``.webm`` (which decides the
        container), or a folder. By default beside the source, ``<stem>.playable.mp4`` or
        ``<stem>.playable.webm`` (not a hidden name: Jupyter will not serve hidden files).
    transcode : "auto", True or False
        ``"auto"`` re-encodes only when copying cannot give a playable file; ``True``
        re-encodes even then; ``False`` never re-encodes and raises ``ValueError`` instead.
    progress : bool, "auto", callable or ProgressReporter
        As for downloads (``"auto"``: a bar in a notebook or terminal); counts milliseconds of media.

    Returns
    -------
    Path
        The playable file: ``source``'s path when it already plays, else the new file.

    Raises
    ------
    MissingDependencyError
        PyAV is not installed.
    DestinationError, NotAVideoError
        As :func:`vidnb.probe`.
    ValueError
        ``transcode=False`` and the file needs re-encoding (the message names its codecs),
        or ``dest`` is the source or has another extension than ``.mp4`` / ``.webm``.

    Examples
    --------
    >>> path = vidnb.make_playable("videos/talk.ts")              # doctest: +SKIP
    >>> path                                                        # doctest: +SKIP
    PosixPath('videos/talk.playable.mp4')
    >>> vidnb.preview(path)                                         # doctest: +SKIP
    """
    if transcode not in ("auto", True, False):
        raise ValueError(f"transcode={transcode!r} is not understood; use 'auto', True or False.")
    path = local_file(source.path) if isinstance(source, DownloadResult) else Path(source)
    info = probe(path)
    if info.playable:
        return path
    fmt, copy = _plan(info, dest, transcode)
    out = _destination(info, dest, fmt)
    if _is_done(out, path):
        log.info("%s is already made from %s", out, path.name)
        return out
    tracker = _tracker(progress, out)
    if copy:
        _write_through_part(out, lambda part: _copy(path, part, fmt, None, tracker))
    else:
        log.info("re-encoding %s (%s/%s) to VP9/Opus in %s", path.name, info.video_codec, info.audio_codec, out)
        _write_through_part(out, lambda part: _transcode(path, part, fmt, tracker))
    return out


def _plan(info: VideoInfo, dest: PathArg | None, transcode: Transcode) -> tuple[Format, bool]:
    """The container to write and whether copying the streams will do."""
    wanted = _format_of(dest)
    choices: tuple[Format, ...] = ("webm", "mp4") if wanted is None else (wanted,)
    fits = [f for f in choices if _fits(f, info)]
    if fits and info.container in _COPY_FROM and transcode is not True:
        return fits[0], True
    if transcode is False:
        codecs = f"{info.video_codec}/{info.audio_codec or 'no audio'}"
        raise ValueError(
            f"{info.path.name} is {codecs} in {info.container}, which cannot be copied into {wanted or 'MP4 or WebM'} "
            "as it is; make_playable(..., transcode=True) would re-encode it to VP9/Opus."
        )
    return (wanted or "webm"), False


def _fits(fmt: Format, info: VideoInfo) -> bool:
    video_ok, audio_ok = PLAYABLE_CODECS[fmt]
    return info.video_codec in video_ok and (info.audio_codec is None or info.audio_codec in audio_ok)


def _format_of(dest: PathArg | None) -> Format | None:
    if dest is None or Path(dest).is_dir():
        return None
    suffix = Path(dest).suffix.lower()
    if suffix == ".mp4":
        return "mp4"
    if suffix == ".webm":
        return "webm"
    raise ValueError(f"dest={str(dest)!r} must end in .mp4 or .webm (or be a folder): those are what browsers play.")


def _destination(info: VideoInfo, dest: PathArg | None, fmt: Format) -> Path:
    name = f"{info.path.stem}.playable.{fmt}"
    if dest is None:
        out = info.path.with_name(name)
    else:
        out = Path(dest) / name if Path(dest).is_dir() else Path(dest)
    if out.resolve() == info.path.resolve():
        raise ValueError(f"dest={str(dest)!r} is the source itself; choose another file.")
    return out


def _is_done(out: Path, source: Path) -> bool:
    """Whether ``out`` is a finished result of ``source``: newer than it, and playable."""
    try:
        if out.stat().st_mtime < source.stat().st_mtime:
            return False
        return probe(out).playable
    except (OSError, NotAVideoError):
        return False


def _tracker(progress: ProgressOption, dest: Path) -> Tracker:
    reporter = make_reporter(progress)
    if isinstance(reporter, TqdmReporter):
        reporter.kwargs.update(_MEDIA_BAR)
    return Tracker(reporter, dest.name)


def _begin(tracker: Tracker, duration: float | None) -> None:
    """Start counting milliseconds of media towards ``duration`` (seconds, if known)."""
    if isinstance(tracker.reporter, TqdmReporter):
        tracker.reporter.kwargs["bar_format"] = _MEDIA_FORMAT if duration else _MEDIA_FORMAT_UNSIZED
    tracker.begin(tracker.name, round(duration * 1000) if duration else None, 0)


def _finish(tracker: Tracker) -> None:
    """The bar at 100 %: the last packet's time is a frame short of the duration."""
    if tracker.total is not None and tracker.done < tracker.total:
        tracker.advance(tracker.total - tracker.done)
    tracker.end("done")


def _write_through_part(dest: Path, write: Callable[[Path], None]) -> None:
    """Run ``write`` on ``<dest>.part``, then rename it onto ``dest``; on any failure remove it."""
    require_av()  # before anything is created
    part = part_path(dest)
    try:
        write(part)
        os.replace(part, dest)
    except BaseException:
        remove_quietly(part)
        raise


# --------------------------------------------------------------------------- copying


@dataclass
class _Timing:
    """One copied stream's timestamps: decoding times filled in, increasing, and shifted to start at 0.

    Timestamps that start again further back (an HLS discontinuity, TS files joined end to
    end) carry on from where they were instead, so the file plays straight through.
    """

    shift: int  # added to every timestamp: minus the common start, plus what discontinuities added
    jump: int  # a decoding time this much earlier than the last one is a discontinuity (1 s)
    waiting: list[av.packet.Packet[Any]] = field(default_factory=list)
    last_dts: int | None = None  # as written, after the shift

    def fix(self, packet: av.packet.Packet[Any]) -> list[av.packet.Packet[Any]]:
        """The packets ready to mux once ``packet`` has arrived (Matroska's first ones wait for a dts)."""
        if packet.dts is None:
            if self.last_dts is None:
                if packet.pts is not None:  # else there is nothing to place it by
                    self.waiting.append(packet)
                return []
            step = self.last_dts - self.shift + max(1, packet.duration or 1)
            packet.dts = step if packet.pts is None else min(step, packet.pts)
        return self._shift(self._backfill(packet.dts) + [packet])

    def flush(self) -> list[av.packet.Packet[Any]]:
        """At the end: packets that never saw a decoding time take their presentation time."""
        waiting, self.waiting = self.waiting, []
        for p in waiting:
            p.dts = p.pts
        return self._shift(waiting)

    def _backfill(self, first_dts: int) -> list[av.packet.Packet[Any]]:
        """Give the waiting packets decoding times just before the first known one, a frame apart."""
        waiting, self.waiting = self.waiting, []
        n = len(waiting)
        for i, p in enumerate(waiting):
            assert p.pts is not None
            p.dts = min(first_dts - (n - i) * max(1, p.duration or 1), p.pts)
        return waiting

    def _shift(self, packets: list[av.packet.Packet[Any]]) -> list[av.packet.Packet[Any]]:
        for p in packets:
            assert p.dts is not None
            dts = p.dts + self.shift
            if self.last_dts is not None and dts < self.last_dts - self.jump:
                self.shift += self.last_dts + max(1, p.duration or 1) - dts
                dts = p.dts + self.shift
            pts = (p.dts if p.pts is None else p.pts) + self.shift
            if self.last_dts is not None and dts <= self.last_dts:
                # Muxers refuse a decoding time that does not move forward: nudge it, as ffmpeg does.
                dts = self.last_dts + 1
            p.dts, p.pts = dts, max(pts, dts)
            self.last_dts = dts
        return packets


def _copy(src: Path, part: Path, fmt: Format, audio: PathArg | None, tracker: Tracker) -> None:
    """Copy ``src``'s main video and audio (or ``audio``'s audio) into ``part`` as ``fmt``."""
    import av

    inputs: list[tuple[av.container.InputContainer, list[av.stream.Stream]]] = []
    try:
        container, _ = open_video(src)
        video, own_audio = main_streams(container)
        assert video is not None
        inputs.append((container, [video]))
        if audio is not None:
            inputs.append(_open_audio(Path(audio)))
        elif own_audio is not None:
            inputs[0][1].append(own_audio)
        options = {"movflags": "+faststart"} if fmt == "mp4" else {}
        with av.open(file_url(part), "w", format=fmt, options=options) as out:
            _check_codecs(src, out, [s for _, group in inputs for s in group])
            outs = {id(s): out.add_stream_from_template(s) for _, group in inputs for s in group}
            starts = [c.start_time / 1e6 if c.start_time is not None else 0.0 for c, _ in inputs]
            shared = max(starts) - min(starts) < _SAME_CLOCK
            packets = [
                _timed_packets(c, group, min(starts) if shared else start)
                for (c, group), start in zip(inputs, starts, strict=True)
            ]
            _begin(tracker, container.duration / 1e6 if container.duration else None)
            done = 0
            for t, packet in heapq.merge(*packets, key=lambda item: item[0]):
                packet.stream = outs[id(packet.stream)]
                out.mux(packet)
                if t * 1000 > done:
                    tracker.advance(round(t * 1000) - done)
                    done = round(t * 1000)
        _finish(tracker)
    except BaseException as exc:
        tracker.end("cancelled" if isinstance(exc, KeyboardInterrupt) else "failed", str(exc) or type(exc).__name__)
        raise
    finally:
        for c, _ in inputs:
            c.close()


def _open_audio(path: Path) -> tuple[av.container.InputContainer, list[av.stream.Stream]]:
    """An audio file to mux in, opened with PyAV, and its main audio stream."""
    import av

    if not path.is_file():
        raise DestinationError(f"The audio file {path} does not exist: check the path.", path)
    try:
        container = av.open(file_url(path), metadata_errors="replace")
    except av.error.FFmpegError as exc:
        raise NotAVideoError(f"{path} cannot be read as audio ({exc}).") from exc
    _, audio = main_streams(container)
    if audio is None:
        container.close()
        raise NotAVideoError(f"{path} has no audio stream to mux in.")
    return container, [audio]


def _check_codecs(src: Path, out: av.container.OutputContainer, streams: list[av.stream.Stream]) -> None:
    supported = out.supported_codecs
    for s in streams:
        name = s.codec.canonical_name
        if name not in supported:
            raise ValueError(
                f"{src.name} has {s.type} in {name}, which {out.format.name.upper()} cannot hold without "
                "re-encoding; vidnb.make_playable(...) re-encodes it to VP9/Opus."
            )


def _timed_packets(
    container: av.container.InputContainer, streams: list[av.stream.Stream], start: float
) -> Iterator[tuple[float, av.packet.Packet[Any]]]:
    """``streams``' packets with fixed timestamps, each with its decoding time in seconds (for merging inputs)."""
    timing = {
        id(s): _Timing(-round(start / s.time_base), round(1 / s.time_base)) if s.time_base else _Timing(0, 1 << 62)
        for s in streams
    }
    # Seconds per tick as a float: Fraction arithmetic per packet took a tenth of a 100 MB copy's time.
    tick = {id(s): float(s.time_base or 0) for s in streams}
    for packet in container.demux(streams):
        if packet.size == 0:
            continue  # the empty packet that ends each stream
        key = id(packet.stream)
        for p in timing[key].fix(packet):
            yield p.dts * tick[key], p  # type: ignore[operator]  # fix() gave every packet a dts
    for key, t in timing.items():
        for p in t.flush():
            yield p.dts * tick[key], p  # type: ignore[operator]


# --------------------------------------------------------------------------- re-encoding

#: libvpx-vp9 tuned for speed (measured: 234-483 fps at 640x360 on 2 cores): realtime
#: deadline, cpu-used 8, row multithreading; constant quality, no bitrate target.
_VP9_OPTIONS = {"deadline": "realtime", "cpu-used": "8", "row-mt": "1", "crf": "33", "b": "0"}
#: Encoder timestamps in milliseconds, WebM's own unit: frames keep their times (variable
#: frame rates included) whatever the input's time base.
_MS = Fraction(1, 1000)


def _transcode(src: Path, part: Path, fmt: Format, tracker: Tracker) -> None:
    """Re-encode ``src``'s main video to VP9 and its main audio to Opus, into ``part`` as ``fmt``."""
    import av

    container, _ = open_video(src)
    try:
        video, audio = main_streams(container)
        assert video is not None
        video.thread_type = "AUTO"  # decoding with every core; set before the decoder opens
        start = container.start_time / 1e6 if container.start_time is not None else 0.0
        duration = container.duration / 1e6 if container.duration else None
        with av.open(file_url(part), "w", format=fmt) as out:
            encode_video = _video_encoder(out, video, start)
            encode_audio = _audio_encoder(out, audio, start) if audio is not None else None
            _begin(tracker, duration)
            done = 0
            for packet in container.demux([s for s in (video, audio) if s is not None]):
                for frame in packet.decode():
                    if isinstance(frame, av.VideoFrame):
                        ms = encode_video(frame)
                        if ms is not None and ms > done:
                            tracker.advance(ms - done)
                            done = ms
                    elif isinstance(frame, av.AudioFrame) and encode_audio is not None:
                        encode_audio(frame)
            encode_video(None)
            if encode_audio is not None:
                encode_audio(None)
        _finish(tracker)
    except BaseException as exc:
        tracker.end("cancelled" if isinstance(exc, KeyboardInterrupt) else "failed", str(exc) or type(exc).__name__)
        raise
    finally:
        container.close()


def _video_encoder(
    out: av.container.OutputContainer, video: av.video.stream.VideoStream, start: float
) -> Callable[[av.VideoFrame | None], int | None]:
    """A function that encodes and muxes one frame (None: flush); it returns the frame's time in ms."""
    rate = video.average_rate or video.guessed_rate or Fraction(25)
    width, height = video.codec_context.width, video.codec_context.height
    options = dict(_VP9_OPTIONS, **{"tile-columns": str(max(0, min(4, (width // 256).bit_length() - 1)))})
    stream = out.add_stream("libvpx-vp9", rate=rate, options=options)
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    stream.codec_context.time_base = _MS
    stream.codec_context.thread_count = os.cpu_count() or 1
    if video.codec_context.sample_aspect_ratio:
        stream.codec_context.sample_aspect_ratio = video.codec_context.sample_aspect_ratio
    last = -1

    def encode(frame: av.VideoFrame | None) -> int | None:
        nonlocal last
        if frame is None:
            out.mux(stream.encode(None))
            return None
        t = frame.time
        ms = round((t - start) * 1000) if t is not None else last + round(1000 / rate)
        if ms <= last:
            return None  # a repeated timestamp: the encoder needs them to increase
        last = ms
        if frame.format.name != "yuv420p" or frame.width != width or frame.height != height:
            frame = frame.reformat(width=width, height=height, format="yuv420p")
        frame.pts, frame.time_base = ms, _MS
        out.mux(stream.encode(frame))
        return ms

    return encode


def _audio_encoder(
    out: av.container.OutputContainer, audio: av.audio.stream.AudioStream, start: float
) -> Callable[[av.AudioFrame | None], None]:
    """A function that encodes and muxes one audio frame into Opus (None: flush)."""
    rate = audio.codec_context.sample_rate or 48000
    stereo = audio.codec_context.channels >= 2
    stream = out.add_stream("libopus", rate=48000)
    stream.layout = "stereo" if stereo else "mono"
    stream.bit_rate = 128_000 if stereo else 64_000
    next_pts: int | None = None

    def encode(frame: av.AudioFrame | None) -> None:
        nonlocal next_pts
        if frame is None:
            out.mux(stream.encode(None))
            return
        # Timestamps in samples, continuing from the previous frame: decoders of MP3 in AVI
        # give times that jump back and forth ("non monotonically increasing dts" at the
        # muxer). A frame is placed by its own time only when that leaves a real gap.
        t = frame.time
        pts = round((t - start) * rate) if t is not None else None
        if next_pts is None:
            next_pts = max(0, pts or 0)
        elif pts is not None and pts > next_pts + frame.samples:
            next_pts = pts
        frame.pts, frame.time_base = next_pts, Fraction(1, rate)
        next_pts += frame.samples
        out.mux(stream.encode(frame))

    return encode
