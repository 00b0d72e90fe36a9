"""The one exception type the CLI turns into a one-line message and exit code 2, and how text is shown."""

from __future__ import annotations


class SlcbenchError(Exception):
    """Bad input or an impossible request: the message is shown to the user as is, without a traceback."""


class OutputExistsError(SlcbenchError):
    """A results file is already there and may not be overwritten (so a caller can pick another name)."""


def printable(text: str) -> str:
    """``text`` on one line and encodable: control characters (a newline in a file name) and bytes that
    were not UTF-8 in a name (surrogate escapes) are written as backslash escapes."""
    out = []
    for char in text:
        code = ord(char)
        if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte of a file name (os.fsdecode's surrogateescape)
            out.append(f"\\x{code - 0xDC00:02x}")
        elif code < 0x20 or code == 0x7F or 0xD800 <= code <= 0xDFFF:
            out.append(char.encode("unicode_escape").decode("ascii") if code < 0xD800 else f"\\u{code:04x}")
        else:
            out.append(char)
    return "".join(out)
