#!/usr/bin/env bash
# Regenerates the bundled sample clips next to this script:
#   sample.mp4  - 3.0 s, 320x240, 24 fps, H.264 (main profile, yuv420p) + AAC mono 64k
#   sample.webm - the same clip as VP9 + Opus
# Only ffmpeg's built-in lavfi sources are used (testsrc2 pattern with a running
# counter, 440 Hz sine), so the clips carry no third-party content and can be
# rebuilt anywhere that has ffmpeg with libx264, libvpx and libopus.
#
# Why these choices:
#   * +faststart moves the `moov` index in front of `mdat`, so a browser can start
#     playing while the file is still arriving instead of waiting for the end.
#   * WebM/VP9 is shipped as a second format because some front ends (e.g. some
#     Chromium/Electron builds without proprietary codecs) cannot play H.264.
#   * bitexact flags, no metadata and single-threaded encoders keep the output
#     byte-stable for a given ffmpeg/x264/libvpx version, so reruns don't churn git.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
command -v ffmpeg >/dev/null || { echo "ffmpeg not found (Debian package: ffmpeg)" >&2; exit 1; }

duration=3
video_src="testsrc2=size=320x240:rate=24:duration=${duration}"
audio_src="sine=frequency=440:sample_rate=48000:duration=${duration}"

# Flags shared by both outputs: quiet, overwrite, deterministic container output.
common=(-hide_banner -loglevel error -y
        -f lavfi -i "$video_src"
        -f lavfi -i "$audio_src"
        -map 0:v:0 -map 1:a:0 -t "$duration"
        -map_metadata -1 -fflags +bitexact -flags:v +bitexact -flags:a +bitexact
        -ac 1 -b:a 64k)

ffmpeg "${common[@]}" \
    -c:v libx264 -profile:v main -level 3.0 -pix_fmt yuv420p -preset medium -crf 26 \
    -threads 1 -g 48 \
    -c:a aac \
    -movflags +faststart \
    "$here/sample.mp4"

ffmpeg "${common[@]}" \
    -c:v libvpx-vp9 -pix_fmt yuv420p -b:v 0 -crf 36 -deadline good -cpu-used 2 \
    -row-mt 0 -threads 1 -g 48 \
    -c:a libopus \
    "$here/sample.webm"

ls -l "$here/sample.mp4" "$here/sample.webm"
