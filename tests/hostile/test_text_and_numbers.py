"""Names and numbers: printed literally on one line, range-checked against what the libraries accept."""

import os

import pytest

from tests.hostile import crafting


def test_markup_in_paths_is_printed_literally(tmp_path, cli):
    good = crafting.good_logits(tmp_path, "[red]loss.npz")
    (tmp_path / "runs[").mkdir()
    done = cli("evaluate", good, "--json", "runs[/x].json")
    assert done.code == 0, done.stderr
    assert "[red]loss.npz" in done.stdout and (tmp_path / "runs[/x].json").exists()
    missing = cli("evaluate", tmp_path / "[bold]gone.npz")
    missing.refused("[bold]gone.npz")


def test_a_newline_in_a_name_cannot_split_the_error(tmp_path, cli):
    cli("evaluate", tmp_path / "two\nlines.npz").refused("two\\nlines.npz")


def test_names_that_are_not_utf8_are_shown_with_escapes_and_written(tmp_path, cli):
    name = os.fsdecode(b"loss-\xff.npz")
    crafting.good_logits(tmp_path, name)
    done = cli("evaluate", name, "--csv", "out.csv", "--json", "out.json")
    assert done.code == 0, done.stderr
    assert "loss-\\xff.npz" in (tmp_path / "out.csv").read_text(errors="replace")
    cli("evaluate", os.fsdecode(b"gone-\xfe.npz")).refused("gone-\\xfe.npz")


@pytest.mark.parametrize(
    "args, message",
    [
        (["speed", "--device", "cpu", "--seed", str(2**64)], "--seed must be between 0 and 2^63 - 1"),
        (["speed", "--device", "cpu", "--seed", "-1"], "--seed must be between 0 and 2^63 - 1"),
        (["train", "--loss", "cross-entropy", "--seed", str(2**64)], "--seed must be between 0 and 2^63 - 1"),
        (["train", "--loss", "cross-entropy", "--lr", "1e300"], "learning rates must be at most"),
        (["speed", "--device", "cpu", "--threads", "0"], "--threads must be between 1 and 1024"),
        (["compare", "a.json", "b.json", "--false-alarm-rate", "100%"], "--false-alarm-rate"),
    ],
)
def test_numbers_beyond_what_the_libraries_take_are_one_line(tmp_path, cli, args, message):
    extra = ["--out", str(tmp_path / "x.npz")] if args[0] == "train" else []
    cli(*args, *extra).refused(message)
    assert not (tmp_path / "x.npz").exists()
