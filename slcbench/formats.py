"""Output formats: how each kind of payload becomes the bytes of a file.

Every file slcbench writes is one ``Output`` (a path, a format name, a payload), encoded here and
written by ``slcbench.io.write_outputs``. A new format is one ``OutputFormat`` registered in this
module; a run then names it among the files it writes.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slcbench.registry import Registry


@dataclass(frozen=True)
class OutputFormat:
    """How one kind of payload is encoded.

    Parameters
    ----------
    suffix : str
        The file-name suffix it is written with (``".json"``).
    payload : str
        What it encodes, for readers of the code: a document (dict), a table (DataFrame), arrays, ...
    encode : callable
        ``payload -> bytes``.
    """

    suffix: str
    payload: str
    encode: Callable[[Any], bytes]


OUTPUT_FORMATS: Registry[OutputFormat] = Registry("output format")


@dataclass(frozen=True)
class Output:
    """One file to write: where, in which registered format, and what."""

    path: Path
    format: str
    payload: Any

    def encoded(self) -> bytes:
        return OUTPUT_FORMATS.get(self.format).encode(self.payload)


def _json_default(value: Any) -> Any:
    # numpy scalars and paths appear in result dicts; anything else is a bug worth surfacing.
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot serialise {type(value).__name__} to JSON")


def json_bytes(payload: Any) -> bytes:
    """The JSON text of every results file: indented, keys in the order given, UTF-8."""
    text = json.dumps(payload, indent=2, sort_keys=False, default=_json_default, allow_nan=True)
    return (text + "\n").encode("utf-8")


def text_bytes(text: str) -> bytes:
    """UTF-8; a file name's bytes that were not UTF-8 (surrogate escapes) are written as ``\\xff``."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace").encode("utf-8")


def _csv_bytes(frame: Any) -> bytes:
    return text_bytes(str(frame.to_csv(index=False)))


def _npz_bytes(arrays: dict[str, Any]) -> bytes:
    import numpy as np

    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _png_bytes(figure: Any) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


OUTPUT_FORMATS.register("bytes", OutputFormat("", "bytes, written as they are", bytes))
OUTPUT_FORMATS.register("json", OutputFormat(".json", "document (dict)", json_bytes))
OUTPUT_FORMATS.register("csv", OutputFormat(".csv", "table (pandas DataFrame)", _csv_bytes))
OUTPUT_FORMATS.register("txt", OutputFormat(".txt", "text (str)", lambda text: text_bytes(str(text))))
OUTPUT_FORMATS.register("npz", OutputFormat(".npz", "arrays (dict of numpy arrays)", _npz_bytes))
OUTPUT_FORMATS.register("png", OutputFormat(".png", "figure (matplotlib Figure)", _png_bytes))
OUTPUT_FORMATS.register("md", OutputFormat(".md", "Markdown text (str)", lambda text: text_bytes(str(text))))
