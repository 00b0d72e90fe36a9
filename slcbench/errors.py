"""The one exception type the CLI turns into a one-line message and exit code 2, and how errors are summed up."""


class SlcbenchError(Exception):
    """Bad input or an impossible request: the message is shown to the user as is, without a traceback."""


class OutputExistsError(SlcbenchError):
    """A results file is already there and may not be overwritten (so a caller can pick another name)."""


def first_line(exc: BaseException) -> str:
    """``Type: first line of the message``, at most 300 characters: what a failed row records."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]
