"""vidnb's version, and the name it gives servers (on both of its HTTP paths)."""

from __future__ import annotations

import sys

__all__ = ["__version__", "USER_AGENT"]

__version__ = "0.1.0"

#: Sent with every request of a session vidnb opens itself (a header passed in wins), as
#: ``curl/7.88.1`` is by curl: the same on the lean path and on aiohttp's.
USER_AGENT = f"vidnb/{__version__} Python/{sys.version_info[0]}.{sys.version_info[1]}"
