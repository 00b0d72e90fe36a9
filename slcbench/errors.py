"""The one exception type the CLI turns into a one-line message and exit code 2."""


class SlcbenchError(Exception):
    """Bad input or an impossible request: the message is shown to the user as is, without a traceback."""


class OutputExistsError(SlcbenchError):
    """A results file is already there and may not be overwritten (so a caller can pick another name)."""
