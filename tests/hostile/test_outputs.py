"""Outputs: --force replaces only regular files, never an input, never through a link; checked before work."""

import os

import pytest

from tests.hostile import crafting


@pytest.fixture
def good(tmp_path):
    return crafting.good_logits(tmp_path)


@pytest.mark.parametrize("maker", ["fifo", "socket", "device", "folder"])
def test_force_never_replaces_what_is_not_a_regular_file(tmp_path, cli, good, maker):
    keep = None
    if maker == "fifo":
        target = crafting.fifo(tmp_path)
    elif maker == "socket":
        target, keep = crafting.unix_socket(tmp_path)
    elif maker == "device":
        target = crafting.char_device(tmp_path)
        if target is None:
            pytest.skip("making a device node needs root")
    else:
        target = tmp_path / "folder"
        target.mkdir()
    before = crafting.tree_hashes(tmp_path)
    for option in ("--csv", "--json"):
        cli("evaluate", good, option, target, "--force").refused(str(target))
    assert crafting.tree_hashes(tmp_path) == before
    if keep is not None:
        keep.close()


def test_force_never_writes_through_a_symbolic_link(tmp_path, cli, good):
    real = tmp_path / "real.json"
    real.write_text("keep")
    link = tmp_path / "link.json"
    link.symlink_to(real)
    cli("evaluate", good, "--json", link, "--force").refused("symbolic link")
    assert real.read_text() == "keep" and link.is_symlink()


def test_an_output_is_never_one_of_the_inputs_by_any_name(tmp_path, cli, good):
    os.link(good, tmp_path / "hard.npz")
    before = crafting.tree_hashes(tmp_path)
    cli("evaluate", good, "--json", good, "--force").refused("is one of the input files")
    cli("evaluate", good, "--csv", tmp_path / "hard.npz", "--force").refused("is one of the input files")
    cli("evaluate", good, "--json", tmp_path / "sub" / ".." / "good.npz", "--force").refused()
    assert crafting.tree_hashes(tmp_path) == before


def test_outputs_are_refused_before_any_work(tmp_path, cli, good):
    long_name = "x" * 300 + ".json"
    cli("evaluate", good, "--json", long_name).refused("longer than 255 bytes")
    cli("evaluate", good, "--json", "/proc/no-such-folder/out.json").refused("does not exist")
    if os.geteuid() == 0:  # root may write anywhere but /proc and /sys
        cli("evaluate", good, "--json", "/proc/out.json").refused()
    (tmp_path / "plain").write_text("a file")
    speed = cli("speed", "--device", "cpu", "--arch", "resnet18", "-o", tmp_path / "plain")
    assert "is not a folder" in speed.refused() and speed.stdout == ""
    train = cli("train", "--loss", "cross-entropy", "--steps", "2", "--out", "/proc/x.npz")
    train.refused("/proc")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good.npz", "plain"]


def test_files_written_together_stay_together_when_one_is_refused(tmp_path, cli, good):
    (tmp_path / "per-class.csv").write_text("earlier")
    cli("evaluate", good, "--json", "all.json", "--csv", "per-class.csv").refused("already exists")
    assert not (tmp_path / "all.json").exists() and (tmp_path / "per-class.csv").read_text() == "earlier"
