"""Crafted archives and array headers: one line and exit 2, in bounded memory, and no file changed."""

import numpy as np
import pytest

from tests.hostile import crafting

# An address-space limit (ulimit -v) for each run: a plain evaluate needs about 300 MiB of it, so any
# attempt to inflate a bomb or allocate a declared shape fails loudly instead of passing unnoticed.
MEMORY_MIB = 400


@pytest.fixture(scope="module")
def archives(tmp_path_factory):
    return crafting.crafted_archives(tmp_path_factory.mktemp("crafted"))


@pytest.mark.parametrize("name", crafting.ARCHIVES)
def test_a_crafted_archive_is_one_line_in_bounded_memory(archives, name, tmp_path, cli):
    path, needle = archives[name]
    before = crafting.tree_hashes(path.parent)
    out = tmp_path / "r.json"
    line = cli("evaluate", path, "--json", out, memory_mib=MEMORY_MIB).refused(str(path), needle)
    assert "logits.npy" in line or "labels" in line  # the member (or the array) is named
    assert not out.exists()
    assert crafting.tree_hashes(path.parent) == before


def test_the_good_archive_passes_under_the_same_memory_limit(tmp_path, cli):
    done = cli("evaluate", crafting.good_logits(tmp_path), memory_mib=MEMORY_MIB)
    assert done.code == 0, done.stderr


@pytest.mark.parametrize(
    ("header", "needle"),
    [
        (crafting.npy_header((1 << 37, 1000)), "not a readable .npy array (mmap length is greater than file size)"),
        (crafting.npy_header((), text="{'descr': '<f8', 'shape': (3,"), "malformed .npy header"),
        (crafting.npy_header((4, 5), "|O"), "not a readable .npy array"),
    ],
    ids=["terabyte-shape", "unbalanced-brace", "objects"],
)
def test_a_crafted_npy_header_is_one_line(tmp_path, cli, header, needle):
    (tmp_path / "logits.npy").write_bytes(header + bytes(160))
    np.save(tmp_path / "labels.npy", np.zeros(4, dtype=np.int64))
    cli("evaluate", tmp_path, memory_mib=MEMORY_MIB).refused(str(tmp_path / "logits.npy"), needle)


@pytest.mark.parametrize("scale", [1.7e308, 1e200])
def test_extreme_logits_are_refused_without_raw_numpy_warnings(tmp_path, cli, scale):
    rng = np.random.default_rng(0)
    logits = rng.choice([scale, -scale], size=(300, 5))
    np.savez(tmp_path / "extreme.npz", logits=logits, labels=rng.integers(0, 5, 300))
    done = cli("evaluate", tmp_path / "extreme.npz")
    done.refused(f"logits reach {scale:.3g}", "within +-1e+100")
    assert "Warning" not in done.stderr
