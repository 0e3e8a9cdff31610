"""The ``vidnb`` command."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Sequence

from ._errors import VidnbError

EXAMPLES = """\
examples:
  vidnb demo                      download the bundled sample from a local server and verify it
  vidnb demo --dest /tmp/clips    the same, saving into /tmp/clips
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vidnb",
        description="Download video safely: resumable, verified, never half-written.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = sub.add_parser("demo", help="serve the bundled sample on 127.0.0.1, download it, verify it")
    demo.add_argument("--dest", default="vidnb-demo", help="folder to save into (default: %(default)s)")
    demo.add_argument("--webm", action="store_true", help="use the WebM sample instead of the MP4")
    demo.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING, format="vidnb: %(message)s")
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        if args.command == "demo":
            from .demo import run_demo

            run_demo(args.dest, progress=not args.quiet, name="sample.webm" if args.webm else "sample.mp4")
            return 0
    except KeyboardInterrupt:
        print("vidnb: interrupted; partial files are kept, run the same command again to resume", file=sys.stderr)
        return 130
    except (VidnbError, ValueError) as exc:
        if args.debug:
            raise
        print(f"vidnb: error: {exc}", file=sys.stderr)
        return 1
    parser.error(f"unknown command {args.command!r}")
    return 2  # pragma: no cover - parser.error exits


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
