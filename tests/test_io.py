import json

import pytest

from slcbench.errors import SlcbenchError
from slcbench.formats import Output
from slcbench.io import new_results_stem, write_bytes_atomic, write_new_results, write_outputs


def write_json_atomic(path, payload, overwrite=False):
    return write_outputs([Output(path, "json", payload)], overwrite=overwrite)[0]


def write_text_atomic(path, text, overwrite=False):
    return write_outputs([Output(path, "txt", text)], overwrite=overwrite)[0]


def test_write_refuses_to_overwrite_and_keeps_the_old_file(tmp_path):
    target = tmp_path / "out.json"
    write_json_atomic(target, {"a": 1})
    with pytest.raises(SlcbenchError, match="already exists"):
        write_json_atomic(target, {"a": 2})
    assert json.loads(target.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]  # no temporary file left behind


def test_write_overwrites_only_when_asked(tmp_path):
    target = tmp_path / "out.txt"
    write_text_atomic(target, "old")
    write_text_atomic(target, "new", overwrite=True)
    assert target.read_text() == "new"


def test_write_into_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(SlcbenchError, match="does not exist"):
        write_text_atomic(tmp_path / "nope" / "x.txt", "x")


def test_new_results_stem_creates_folder_and_avoids_existing_files(tmp_path):
    folder = tmp_path / "results" / "deep"
    first = new_results_stem(folder, "speed", (".csv", ".json"))
    assert folder.is_dir()
    first.with_name(first.name + ".json").write_text("{}")
    second = new_results_stem(folder, "speed", (".csv", ".json"))
    assert second != first
    assert second.name.startswith("speed-")


def test_written_files_honour_the_umask_not_mkstemps_0600(tmp_path):
    import os
    import stat

    old = os.umask(0o022)
    try:
        path = write_text_atomic(tmp_path / "r.csv", "a,b\n")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_a_name_near_the_file_system_limit_can_be_written(tmp_path):
    # The temporary file's name must not be longer than the target's.
    path = tmp_path / ("r" * 250 + ".json")
    write_bytes_atomic(path, b"{}")
    assert path.read_bytes() == b"{}" and [p.name for p in tmp_path.iterdir()] == [path.name]


def test_an_os_error_while_writing_is_one_clear_error_and_leaves_nothing(tmp_path, monkeypatch):
    import errno
    import os

    def refuse(*_args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "link", refuse)
    with pytest.raises(SlcbenchError, match="cannot write .*No space left on device"):
        write_bytes_atomic(tmp_path / "r.json", b"{}")
    assert list(tmp_path.iterdir()) == []


def test_runs_finishing_in_the_same_second_get_different_stems(tmp_path):
    first = write_new_results(tmp_path, "speed", [(".json", "bytes", b"1"), (".csv", "bytes", b"a")])
    second = write_new_results(tmp_path, "speed", [(".json", "bytes", b"2"), (".csv", "bytes", b"b")])
    assert first[0] != second[0] and first[0].stem == first[1].stem
    assert first[0].read_bytes() == b"1" and second[0].read_bytes() == b"2"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in [*first, *second])


def test_files_written_together_land_all_or_none(tmp_path):
    (tmp_path / "b.csv").write_text("earlier")
    with pytest.raises(SlcbenchError, match="b.csv already exists"):
        write_outputs([Output(tmp_path / "a.json", "json", {}), Output(tmp_path / "b.csv", "bytes", b"new")])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.csv"] and (tmp_path / "b.csv").read_text() == "earlier"


def test_a_failure_while_overwriting_puts_the_earlier_files_back(tmp_path, monkeypatch):
    import errno
    import os

    for name in ("a.txt", "b.txt"):
        (tmp_path / name).write_text(f"old {name}")
    real_replace = os.replace
    calls = []

    def replace_once(src, dst):
        calls.append(dst)
        if str(dst).endswith("b.txt"):
            raise OSError(errno.EIO, "Input/output error")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace_once)
    with pytest.raises(SlcbenchError, match="cannot write .*b.txt: Input/output error"):
        write_outputs(
            [Output(tmp_path / "a.txt", "txt", "new a"), Output(tmp_path / "b.txt", "txt", "new b")], overwrite=True
        )
    monkeypatch.undo()
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == {"a.txt": "old a.txt", "b.txt": "old b.txt"}


def test_an_output_that_cannot_be_encoded_writes_nothing(tmp_path):
    with pytest.raises(TypeError):
        write_outputs([Output(tmp_path / "a.txt", "txt", "fine"), Output(tmp_path / "b.json", "json", {"x": object()})])
    assert list(tmp_path.iterdir()) == []
