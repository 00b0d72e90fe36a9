"""The one exception type the CLI turns into a one-line message and exit code 2, and how text is shown."""

from __future__ import annotations

import unicodedata

EXIT_BAD_INPUT = 2
EXIT_OUTPUT_FAILED = 74  # sysexits' EX_IOERR: standard output could not be written (a full disk)
EXIT_INTERRUPTED = 130
EXIT_OUTPUT_CLOSED = 141  # as if killed by SIGPIPE: standard output was closed or its reader went away


# Unicode categories shown escaped: controls, format characters, line and paragraph separators, surrogates.
_UNPRINTABLE = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})


class SlcbenchError(Exception):
    """Bad input or an impossible request: the message is shown to the user as is, without a traceback."""


class OutputExistsError(SlcbenchError):
    """A results file is already there and may not be overwritten (so a caller can pick another name)."""


def printable(text: str) -> str:
    """``text`` on one line and encodable: control characters (a newline in a file name), line and
    paragraph separators, invisible format characters (a right-to-left override) and bytes that were
    not UTF-8 in a name (surrogate escapes) are written as backslash escapes."""
    out = []
    for char in text:
        code = ord(char)
        if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte of a file name (os.fsdecode's surrogateescape)
            out.append(f"\\x{code - 0xDC00:02x}")
        elif unicodedata.category(char) in _UNPRINTABLE:
            out.append(char.encode("unicode_escape").decode("ascii"))  # \n, \x85, \u2028, \U000e0001
        else:
            out.append(char)
    return "".join(out)
