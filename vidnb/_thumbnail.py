"""One frame of a video as a small JPEG: :func:`thumbnail`.

The frame is found by seeking to the keyframe before the time asked for and decoding
forward to it, and encoded with FFmpeg's own MJPEG encoder inside PyAV (no Pillow).
Seeking needs care in two kinds of files: those whose timestamps do not start at 0
(the target is offset by the file's start time, as players count from the start), and
MPEG-TS, where a backward seek can land on the keyframe *after* the target (there is no
index, FFmpeg bisects by bytes): a first frame later than the target means step back
further and seek again.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Union

from ._errors import NotAVideoError
from ._probe import PathArg, main_streams, open_video
from ._result import DownloadResult, local_file

if TYPE_CHECKING:
    import av.container
    import av.video.frame
    import av.video.stream

__all__ = ["thumbnail"]

Source = Union[DownloadResult, PathArg]

# How far before the target the n-th retry seeks: 1, 2, 4, ... s (GOPs of 10 s and more exist).
_FIRST_STEP_BACK = 1.0


def thumbnail(source: Source, at: float | None = None, width: int = 320) -> bytes:
    """A JPEG of the frame shown ``at`` seconds into a video, ``width`` pixels wide.

    Parameters
    ----------
    source : DownloadResult, str or os.PathLike
        The video (a download's result, or a path).
    at : float, optional
        Seconds from the start as a player counts them; by default 10 % of the duration
        (past the black first frames of most videos).
    width : int
        Width of the image in pixels (made even); the height keeps the picture's aspect
        ratio (non-square pixels included) and is even too.

    Returns
    -------
    bytes
        A baseline JPEG (starts with ``FF D8``), for ``IPython.display.Image`` or a file.

    Raises
    ------
    MissingDependencyError
        PyAV is not installed.
    DestinationError, NotAVideoError
        As :func:`vidnb.probe`: the file is missing, or not a video.
    ValueError
        ``at`` is negative or past the end, or ``width`` is below 2.

    Examples
    --------
    >>> from IPython.display import Image                        # doctest: +SKIP
    >>> Image(vidnb.thumbnail("videos/clip.mp4", at=2.5))          # doctest: +SKIP
    >>> Path("poster.jpg").write_bytes(vidnb.thumbnail(result, width=640))  # doctest: +SKIP
    """
    path = local_file(source.path) if isinstance(source, DownloadResult) else Path(source)
    if not isinstance(width, int) or isinstance(width, bool) or width < 2:
        raise ValueError(f"width={width!r} must be a whole number of pixels, 2 or more.")
    if at is not None and at < 0:
        raise ValueError(f"at={at!r} must be 0 or more seconds.")
    container, _ = open_video(path)
    try:
        video, _ = main_streams(container)
        assert video is not None  # open_video checked
        duration = container.duration / 1e6 if container.duration else None
        if at is None:
            at = 0.1 * duration if duration else 0.0
        elif duration is not None and at > duration:
            raise ValueError(f"at={at} is past the end of {path.name} ({duration:.2f} s long).")
        start = container.start_time / 1e6 if container.start_time is not None else 0.0
        frame = _frame_at(container, video, start, start + at)
        return _jpeg(frame, video, width)
    finally:
        container.close()


def _frame_at(
    container: av.container.InputContainer, video: av.video.stream.VideoStream, start: float, target: float
) -> av.video.frame.VideoFrame:
    """The frame at ``target`` (absolute seconds): the first whose timestamp reaches it, give or take half a frame."""
    rate = video.average_rate or video.guessed_rate
    half = 0.5 / float(rate) if rate else 0.02
    back = 0.0
    while True:
        seek_to = target - back
        # Not a seek to ``start`` itself: in MPEG-TS that can land on the second keyframe too.
        from_top = seek_to <= start
        _seek(container, video, None if from_top else seek_to)
        first, chosen = _decode_to(container, video, target - half)
        if chosen is not None and (from_top or (first is not None and first <= target + half)):
            # From the top, a first frame after the target is the nearest there is (a target
            # in the moment before the video's first frame).
            return chosen
        if from_top:
            raise NotAVideoError(f"{container.name} has a video stream, but no frame of it could be decoded.")
        back = _FIRST_STEP_BACK if back == 0 else back * 2


def _seek(container: av.container.InputContainer, video: av.video.stream.VideoStream, seconds: float | None) -> None:
    """Seek to the keyframe at or before ``seconds`` (absolute), or to the very start for None."""
    if seconds is None:
        container.seek(0, backward=True)  # before every timestamp, whatever the start offset
    elif video.time_base:
        # In the stream's time base: FFmpeg then seeks on that stream's own keyframes.
        container.seek(int(seconds / video.time_base), stream=video, backward=True)
    else:
        container.seek(int(seconds * 1_000_000), backward=True)


def _decode_to(
    container: av.container.InputContainer, video: av.video.stream.VideoStream, reach: float
) -> tuple[float | None, av.video.frame.VideoFrame | None]:
    """Decode from the current position: (time of the first frame, first frame at or after ``reach``).

    At the end of the stream the last frame stands in for one at ``reach`` (a target at the
    very end). Stops at the first frame when that is already past ``reach``: the caller
    decides whether to step back.
    """
    first: float | None = None
    last = None
    for frame in container.decode(video):
        t = frame.time
        if t is None:
            continue  # no timestamp to place it by
        if first is None:
            first = t
        if t >= reach:
            return first, frame
        last = frame
    return first, last


def _jpeg(frame: av.video.frame.VideoFrame, video: av.video.stream.VideoStream, width: int) -> bytes:
    import av
    from av.video.reformatter import ColorRange, Interpolation

    sar = video.codec_context.sample_aspect_ratio or video.sample_aspect_ratio or Fraction(1)
    shown_width = frame.width * (sar if sar > 0 else 1)
    width -= width % 2
    height = max(2, round(width * frame.height / shown_width / 2) * 2)
    # Full-range 4:2:0 is what JPEG means; converting here keeps blacks black.
    small = frame.reformat(
        width=width, height=height, format="yuv420p", dst_color_range=ColorRange.JPEG, interpolation=Interpolation.AREA
    )
    small.pts = None
    encoder = av.CodecContext.create("mjpeg", "w")
    encoder.width, encoder.height = width, height
    encoder.pix_fmt = "yuv420p"
    encoder.color_range = ColorRange.JPEG
    encoder.time_base = Fraction(1, 25)
    # A fixed quantiser (2 is best, 31 worst): about JPEG quality 90, a few KiB at 320 px.
    encoder.qmin = encoder.qmax = 3
    packets = encoder.encode(small) + encoder.encode(None)
    return b"".join(bytes(p) for p in packets)
