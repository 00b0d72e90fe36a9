"""Reading saved logits: memory-mapped where the format allows it, the same numbers either way."""

import numpy as np
import pytest

from slcbench.errors import SlcbenchError
from slcbench.evaluate.evaluation import evaluate_file, evaluate_logits
from slcbench.evaluate.logits import check_logits_and_labels, load_logits, looks_like_probabilities, scan_logits


@pytest.fixture
def arrays():
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 6, size=90)
    logits = rng.normal(size=(90, 6)).astype(np.float32)
    return logits, labels


def test_uncompressed_npz_members_are_memory_mapped(tmp_path, arrays):
    logits, labels = arrays
    np.savez(tmp_path / "a.npz", logits=logits, labels=labels)
    loaded_logits, loaded_labels = load_logits(tmp_path / "a.npz")
    assert isinstance(loaded_logits, np.memmap) and isinstance(loaded_labels, np.memmap)
    assert not loaded_logits.flags.writeable
    np.testing.assert_array_equal(loaded_logits, logits)
    np.testing.assert_array_equal(loaded_labels, labels)


def test_compressed_npz_is_read_into_memory(tmp_path, arrays):
    logits, labels = arrays
    np.savez_compressed(tmp_path / "c.npz", logits=logits, labels=labels)
    loaded_logits, loaded_labels = load_logits(tmp_path / "c.npz")
    assert not isinstance(loaded_logits, np.memmap)
    np.testing.assert_array_equal(loaded_logits, logits)
    np.testing.assert_array_equal(loaded_labels, labels)


def test_fortran_ordered_and_float16_logits(tmp_path, arrays):
    logits, labels = arrays
    fortran = np.asfortranarray(logits.astype(np.float16))
    np.savez(tmp_path / "f.npz", logits=fortran, labels=labels)
    loaded, _ = load_logits(tmp_path / "f.npz")
    assert loaded.flags.f_contiguous and loaded.dtype == np.float16
    np.testing.assert_array_equal(loaded, fortran)
    from_file = evaluate_file(tmp_path / "f.npz").to_dict(wall_seconds=False)
    in_memory = evaluate_logits(logits.astype(np.float16).astype(np.float32), labels, name=str(tmp_path / "f.npz"))
    assert from_file == in_memory.to_dict(wall_seconds=False)


def test_npy_pair_is_memory_mapped_and_scores_like_the_arrays(tmp_path, arrays):
    logits, labels = arrays
    np.save(tmp_path / "logits.npy", logits)
    np.save(tmp_path / "labels.npy", labels)
    loaded_logits, _ = load_logits(tmp_path)
    assert isinstance(loaded_logits, np.memmap)
    from_folder = evaluate_file(tmp_path).to_dict(wall_seconds=False)
    assert {**from_folder, "file": "x"} == {**evaluate_logits(logits, labels).to_dict(wall_seconds=False), "file": "x"}


def test_check_returns_int64_labels_and_leaves_logits_alone(arrays):
    logits, labels = arrays
    checked_logits, checked_labels = check_logits_and_labels(logits, labels.astype(np.uint8))
    assert checked_logits is logits and checked_labels.dtype == np.int64
    with pytest.raises(SlcbenchError, match="^run7: labels must be integers"):
        check_logits_and_labels(logits, labels.astype(bool).astype(np.float32), name="run7")


def test_non_finite_values_are_counted_across_scan_chunks():
    logits = np.zeros((5000, 3000), dtype=np.float32)  # more than one scan chunk
    logits[0, 0] = np.nan
    logits[-1, -1] = -np.inf
    logits[2500, 7] = np.inf
    assert scan_logits(logits) == (3, 0.0)
    logits[[0, -1, 2500], [0, -1, 7]] = 0
    logits[4000, 2] = -7.5
    assert scan_logits(logits) == (0, 7.5)


def test_probability_heuristic():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(50, 4))
    softmax = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert looks_like_probabilities(softmax)
    assert not looks_like_probabilities(logits)
    assert not looks_like_probabilities(softmax * 0.5)  # in [0, 1] but rows do not sum to 1


def test_a_truncated_npz_is_one_clear_error(tmp_path, arrays):
    logits, labels = arrays
    whole = tmp_path / "whole.npz"
    np.savez(whole, logits=logits, labels=labels)
    data = whole.read_bytes()
    for cut in (len(data) - 10, len(data) // 2):
        broken = tmp_path / f"cut-{cut}.npz"
        broken.write_bytes(data[:cut])
        with pytest.raises(SlcbenchError, match=str(broken)):
            load_logits(broken)


def test_a_zip_version_python_cannot_read_is_one_clear_error(tmp_path, arrays):
    logits, labels = arrays
    path = tmp_path / "v64.npz"
    np.savez(path, logits=logits, labels=labels)
    data = bytearray(path.read_bytes())
    directory = data.index(b"PK\x01\x02")  # the first central-directory entry
    data[directory + 6] = 64  # "version needed to extract": 6.4, above what zipfile reads
    path.write_bytes(bytes(data))
    with pytest.raises(SlcbenchError, match=r"damaged \.npz \(zip\) file \(zip file version 6\.4\)"):
        load_logits(path)


def test_a_stored_member_shorter_than_its_header_says_is_refused(tmp_path):
    # np.load refuses such a member ("EOF"); a memory map would read the next entry's bytes as logits.
    import io
    import zipfile

    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (9, 3)})
    short = header.getvalue() + np.zeros((6, 3)).tobytes()
    labels = io.BytesIO()
    np.save(labels, np.zeros(9, dtype=np.int64))
    path = tmp_path / "short.npz"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("logits.npy", short)
        archive.writestr("labels.npy", labels.getvalue())
    with pytest.raises(SlcbenchError, match=r"header declares shape \(9, 3\).*member holds 272 bytes"):
        load_logits(path)


def _flip_one_logit_byte(path, logits):
    data = bytearray(path.read_bytes())
    at = data.find(logits.tobytes()) + 5  # inside the logits member's data, past its .npy header
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))


def test_a_damaged_byte_in_a_mapped_member_fails_its_crc_like_np_load(tmp_path, arrays):
    import zipfile

    logits, labels = arrays
    path = tmp_path / "damaged.npz"
    np.savez(path, logits=logits, labels=labels)
    _flip_one_logit_byte(path, logits)
    with np.load(path) as reference, pytest.raises(zipfile.BadZipFile, match="CRC"):
        reference["logits"]  # numpy's own reader refuses it too
    with pytest.raises(SlcbenchError, match="cannot read array 'logits.npy'.*(CRC check failed|Bad CRC-32)"):
        load_logits(path)


def test_the_crc_is_the_same_read_in_many_small_chunks(tmp_path, arrays, monkeypatch):
    import slcbench.evaluate.logits as logits_module

    monkeypatch.setattr(logits_module, "_CRC_CHUNK_BYTES", 7)  # ends no chunk on an element boundary
    logits, labels = arrays
    np.savez(tmp_path / "a.npz", logits=logits, labels=labels)
    np.testing.assert_array_equal(load_logits(tmp_path / "a.npz")[0], logits)


@pytest.mark.parametrize("split", [0, 1, 7, 4095, 10_000])
def test_crc32_combine_joins_two_crcs_as_zlib_would_the_bytes(split):
    import zlib

    from slcbench.evaluate.logits import crc32_combine

    data = np.random.default_rng(split).integers(0, 256, size=10_000, dtype=np.uint8).tobytes()
    first, second = data[:split], data[split:]
    assert crc32_combine(zlib.crc32(first), zlib.crc32(second), len(second)) == zlib.crc32(data)


def test_the_crc_of_a_file_part_is_the_same_on_many_threads(tmp_path):
    import zlib

    from slcbench.evaluate.logits import file_crc32

    data = np.random.default_rng(0).integers(0, 256, size=100_003, dtype=np.uint8).tobytes()
    path = tmp_path / "bytes"
    path.write_bytes(data)
    for threads in (1, 2, 5):
        assert file_crc32(path, 11, 99_000, threads=threads, part_bytes=7) == zlib.crc32(data[11:99_011])
