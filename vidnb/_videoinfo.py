"""What a video file holds (:class:`VideoInfo`), and which files browsers play as they are.

Pure values and rules (no PyAV here: :mod:`vidnb._probe` fills these in). Names follow
FFmpeg's canonical codec names (``"h264"``, ``"hevc"``, ``"vp9"``, ``"av1"``, ``"aac"``,
``"opus"``, ``"mp3"``, ...) and vidnb's container names:

========  ======================================================================
``mp4``   ISO MP4 (FFmpeg's ``mov,mp4,m4a,3gp,3g2,mj2`` with an MP4 major brand)
``mov``   QuickTime (the same demuxer, major brand ``qt``)
``3gp``   3GPP / 3GPP2 (major brand ``3gp*`` / ``3g2*``)
``webm``  Matroska whose EBML DocType is ``webm``
``mkv``   any other Matroska
``ts``    MPEG transport stream (``mpegts``)
``wmv``   ASF, the container of WMV/WMA (``asf``)
other     FFmpeg's demuxer name as it is: ``avi``, ``flv``, ``ogg``, ``mpeg`` (program stream), ...
========  ======================================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ._fmt import human_bytes

__all__ = ["VideoInfo", "browser_playable", "PLAYABLE_CODECS", "container_name"]

#: For each container Chromium and Firefox both play from a ``<video src>``: the video and
#: the audio codecs they play in it. HEVC is left out (Chromium plays it only with a
#: hardware decoder, Firefox hardly at all), so is Theora (Chromium removed it in 2024),
#: and so are ``mov`` (Firefox refuses ``video/quicktime``, the type Jupyter serves .mov
#: files with) and ``mkv`` (only WebM's subset of Matroska is played everywhere).
PLAYABLE_CODECS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "mp4": (frozenset({"h264", "vp9", "av1"}), frozenset({"aac", "mp3", "opus", "flac"})),
    "webm": (frozenset({"vp8", "vp9", "av1"}), frozenset({"vorbis", "opus"})),
}


def browser_playable(container: str, video_codec: str | None, audio_codec: str | None) -> bool:
    """Whether Chromium and Firefox both play a file as it is, from its container and codecs.

    Parameters
    ----------
    container : str
        vidnb's container name (``"mp4"``, ``"webm"``, ``"mkv"``, ``"ts"``, ...; see the module).
    video_codec : str or None
        Canonical name of the video codec (``"h264"``, ``"vp9"``, ...); None for no video.
    audio_codec : str or None
        Canonical name of the audio codec (``"aac"``, ``"opus"``, ...); None for a silent video.

    Returns
    -------
    bool
        False for a file without video: an audio file is not a playable video.

    Examples
    --------
    >>> browser_playable("mp4", "h264", "aac"), browser_playable("webm", "vp9", None)
    (True, True)
    >>> browser_playable("ts", "h264", "aac"), browser_playable("mp4", "hevc", "aac")
    (False, False)
    """
    codecs = PLAYABLE_CODECS.get(container)
    if codecs is None or video_codec is None:
        return False
    video_ok, audio_ok = codecs
    return video_codec in video_ok and (audio_codec is None or audio_codec in audio_ok)


def container_name(demuxer: str, major_brand: str | None = None, doctype: str | None = None) -> str:
    """vidnb's name for a container, from FFmpeg's demuxer name and what the file says of itself.

    Parameters
    ----------
    demuxer : str
        FFmpeg's (PyAV's ``container.format.name``), e.g. ``"mov,mp4,m4a,3gp,3g2,mj2"``.
    major_brand : str or None
        The ISO BMFF ``ftyp`` major brand (``"isom"``, ``"qt  "``, ...), for the MP4 family.
    doctype : str or None
        The EBML DocType (``"webm"``, ``"matroska"``), for Matroska.

    Returns
    -------
    str

    Examples
    --------
    >>> container_name("mov,mp4,m4a,3gp,3g2,mj2", "isom"), container_name("mov,mp4,m4a,3gp,3g2,mj2", "qt  ")
    ('mp4', 'mov')
    >>> container_name("matroska,webm", doctype="webm"), container_name("matroska,webm", doctype="matroska")
    ('webm', 'mkv')
    >>> container_name("mpegts"), container_name("asf"), container_name("avi")
    ('ts', 'wmv', 'avi')
    """
    if demuxer.startswith("mov,"):
        brand = (major_brand or "").strip().lower()
        if brand == "qt":
            return "mov"
        if brand.startswith(("3gp", "3g2")):
            return "3gp"
        return "mp4"
    if demuxer.startswith("matroska"):
        return "webm" if (doctype or "").lower() == "webm" else "mkv"
    return _RENAMED.get(demuxer, demuxer.split(",")[0])


_RENAMED = {"mpegts": "ts", "asf": "wmv", "asf_o": "wmv"}


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`vidnb.probe` found in a video file.

    Attributes
    ----------
    path : Path
        The file.
    container : str
        vidnb's container name: ``"mp4"``, ``"webm"``, ``"mkv"``, ``"mov"``, ``"ts"``, ``"avi"``,
        ``"flv"``, ``"wmv"``, ``"ogg"``, ...
    duration : float or None
        Seconds, from the first to the last timestamp (a file's start offset is not counted).
    width, height : int
        Pixels of the video stream as stored.
    fps : float or None
        Average frames per second.
    video_codec : str
        Canonical codec name: ``"h264"``, ``"hevc"``, ``"vp9"``, ``"av1"``, ``"mpeg4"``, ...
    audio_codec : str or None
        ``"aac"``, ``"opus"``, ``"mp3"``, ...; None for a silent video.
    bit_rate : int or None
        Bits per second, all streams together.
    size : int
        Bytes in the file.
    start_time : float
        The first timestamp in seconds (not 0 for most MPEG-TS files and HLS recordings).
    playable : bool
        Whether Chromium and Firefox play the file as it is (see :func:`browser_playable`).

    Examples
    --------
    >>> VideoInfo(Path("clip.mp4"), "mp4", 10.0, 1280, 720, 30.0, "h264", "aac", 1_000_000, 1_258_291, 0.0, True)
    <VideoInfo clip.mp4: mp4 h264/aac 1280x720 30 fps 10.0 s 1.2 MiB, plays in browsers>
    """

    path: Path
    container: str
    duration: float | None
    width: int
    height: int
    fps: float | None
    video_codec: str
    audio_codec: str | None
    bit_rate: int | None
    size: int
    start_time: float
    playable: bool

    def __repr__(self) -> str:
        codecs = f"{self.video_codec}/{self.audio_codec}" if self.audio_codec else f"{self.video_codec}, no audio"
        fps = f" {self.fps:.2f}".rstrip("0").rstrip(".") + " fps" if self.fps else ""
        duration = f" {self.duration:.1f} s" if self.duration is not None else ""
        plays = "plays in browsers" if self.playable else "browsers cannot play it"
        return (f"<VideoInfo {self.path.name}: {self.container} {codecs} {self.width}x{self.height}{fps}"
                f"{duration} {human_bytes(self.size)}, {plays}>")
