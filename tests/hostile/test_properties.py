"""Property-based hostile input: whatever bytes a file holds, reading it either works or is one SlcbenchError.

Each property is checked in-process on many generated inputs (hypothesis); the subprocess tests
beside it check that a SlcbenchError becomes one line and exit 2 at the command line.
"""

import json
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from slcbench.cli import app
from slcbench.compare.files import load_results
from slcbench.errors import SlcbenchError
from slcbench.evaluate.logits import check_logits_and_labels, load_logits
from tests.compare.test_compare import speed_payload
from tests.hostile import crafting

FUZZ = settings(
    max_examples=int(__import__("os").environ.get("FUZZ_N", 150)),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def _archive_bytes(compression: int) -> bytes:
    folder = Path(tempfile.mkdtemp())
    path = crafting.good_logits(folder, n=40, k=4)
    if compression == zipfile.ZIP_DEFLATED:
        with np.load(path) as arrays:
            np.savez_compressed(path, **arrays)
    return path.read_bytes()


ARCHIVES = {"stored": _archive_bytes(zipfile.ZIP_STORED), "deflated": _archive_bytes(zipfile.ZIP_DEFLATED)}


@st.composite
def damaged(draw, original: bytes) -> bytes:
    """``original`` with some bytes replaced, a slice cut out, or random bytes inserted."""
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["replace", "cut", "insert", "truncate"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "replace":
            data[at : at + 4] = draw(st.binary(min_size=1, max_size=4))
        elif kind == "cut":
            del data[at : at + draw(st.integers(1, 64))]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        else:
            del data[at:]
    return bytes(data)


def _read_or_refuse(path: Path) -> None:
    try:
        check_logits_and_labels(*load_logits(path), name=str(path))
    except SlcbenchError as exc:
        assert "\n" not in str(exc)


@pytest.mark.parametrize("kind", sorted(ARCHIVES))
@FUZZ
@given(data=st.data())
def test_a_damaged_archive_is_read_or_refused_with_one_error(tmp_path, kind, data):
    path = tmp_path / "damaged.npz"
    path.write_bytes(data.draw(damaged(ARCHIVES[kind])))
    _read_or_refuse(path)


NPY_HEADER_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4).map(tuple) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)


@FUZZ
@given(
    descr=st.sampled_from(["<f8", "<f4", ">f8", "<i8", "|u1", "|O", "<c16", "S3", "V8", "<M8[s]"])
    | st.text(max_size=6),
    shape=NPY_HEADER_VALUES,
    fortran=NPY_HEADER_VALUES,
    body=st.binary(max_size=64),
)
def test_any_npy_header_is_read_or_refused_with_one_error(tmp_path, descr, shape, fortran, body):
    text = repr({"descr": descr, "fortran_order": fortran, "shape": shape})
    (tmp_path / "logits.npy").write_bytes(crafting.npy_header((), text=text) + body)
    np.save(tmp_path / "labels.npy", np.zeros(2, dtype=np.int64))
    _read_or_refuse(tmp_path)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=True) | st.integers() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)


@FUZZ
@given(
    field=st.sampled_from(["rows", "schema_version", "kind", "environment", "settings", "timing"]), value=JSON_VALUES
)
def test_a_speed_file_with_any_field_replaced_is_read_or_refused(tmp_path, field, value):
    original = speed_payload()
    if field == "rows" and isinstance(value, dict) and original["rows"]:
        original["rows"][0].update(value)  # a row's fields, not the list, replaced
    else:
        original[field] = value
    path = tmp_path / "speed.json"
    path.write_text(json.dumps(original))
    try:
        load_results(path)
    except SlcbenchError as exc:
        assert "\n" not in str(exc)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.text(st.characters(blacklist_characters="/\x00"), min_size=1, max_size=40))
def test_any_file_name_is_shown_on_one_line(tmp_path, name):
    result = CliRunner().invoke(app, ["evaluate", str(tmp_path / name), "--json", str(tmp_path / f"{name}.json")])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("slcbench: error: ") and "no such file" in lines[0], lines
