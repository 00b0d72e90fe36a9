"""Inputs: only regular files (and folders where allowed) are opened; nothing hangs or reads forever."""

import pytest

from tests.hostile import crafting


@pytest.mark.parametrize("command", ["evaluate", "compare"])
def test_special_files_are_refused_by_name_before_they_are_opened(tmp_path, cli, command):
    fifo = crafting.fifo(tmp_path)
    sock, server = crafting.unix_socket(tmp_path)
    other = crafting.good_logits(tmp_path) if command == "evaluate" else tmp_path / "x.json"
    for special, kind in ((fifo, "FIFO"), (sock, "socket"), ("/dev/zero", "character device")):
        args = [special] if command == "evaluate" else [special, other]
        cli(command, *args, timeout=20).refused(str(special), kind)
    server.close()


def test_train_refuses_a_data_folder_whose_files_are_not_regular(tmp_path, cli):
    crafting.mnist(tmp_path / "data")
    images = tmp_path / "data" / "MNIST" / "raw" / "train-images-idx3-ubyte"
    images.unlink()
    crafting.fifo(images.parent, images.name)
    out = tmp_path / "x.npz"
    cli(
        "train",
        "--dataset",
        "mnist",
        "--data-dir",
        tmp_path / "data",
        "--loss",
        "cross-entropy",
        "--steps",
        "2",
        "--out",
        out,
        timeout=60,
    ).refused("FIFO")
    assert not out.exists()
