"""Text from models, code and tools made safe to print on a terminal."""

from __future__ import annotations

import re

__all__ = ["printable"]

# C0 controls but tab and line feed, DEL, and C1 controls: ESC and CSI start the
# escape sequences that move the cursor, set the window title or make hyperlinks.
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """Show control characters (terminal escape sequences among them) as escapes."""
    return _CONTROL_CHARACTERS.sub(lambda match: repr(match.group())[1:-1], text)
