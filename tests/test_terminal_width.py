"""Every command's result tables at 80 columns: no line wider than the console, no number or header cut
("…"), the essential numbers in full, and a line naming the columns left out; at 200 columns, and with
--wide at any width, every column."""

import io
import json

import numpy as np
import pytest
from rich.cells import cell_len
from rich.console import Console
from rich.text import Text
from typer.testing import CliRunner

from slcbench.cli import app
from slcbench.console import ColumnSpec, FittedTable, fold_path, pick_columns, print_table, table_width
from slcbench.isbe.analysis import analyse
from slcbench.isbe.config import Network
from slcbench.isbe.report import tables as isbe_tables
from slcbench.results import Head, SpeedRow, Timing
from slcbench.speed.report import speed_table
from tests.compare.test_compare import speed_payload
from tests.isbe.test_isbe_analysis import OPTIONS, VARIANT, WARMUP, drifting_group

runner = CliRunner()
ELLIPSIS = "…"
LEFT_BORDERS, RIGHT_BORDERS = "┏┃┡│├└", "┓┃┩│┤┘"


def rendered(renderable, width, *, wide=False):
    console = Console(width=width, record=True, file=io.StringIO())
    print_table(console, renderable, wide=wide)
    return console.export_text()


def assert_fits(text, width):
    widest = max(text.splitlines(), key=cell_len)
    assert cell_len(widest) <= width, f"a line of {cell_len(widest)} columns at {width}:\n{widest}"
    assert ELLIPSIS not in text, text
    for line in text.splitlines():  # a table's line ends at its border, not cropped at the console's edge
        if line.strip() and line.lstrip()[0] in LEFT_BORDERS:
            assert line.rstrip()[-1] in RIGHT_BORDERS, f"a line cut at {width} columns:\n{line}"


def invoke(width, *args):
    result = runner.invoke(app, [str(a) for a in args], env={"COLUMNS": str(width)})
    assert result.exit_code in (0, 1), result.output
    return result.stdout


# ---- speed ------------------------------------------------------------------------------------------------


def speed_rows():
    def row(classes, batch_ms, speedup):
        row = SpeedRow(
            arch="resnet50",
            classes=classes,
            head=Head.full,
            precision="fp32",
            timing=Timing.graph,
            channels_last=False,
            compiled=False,
            batch_size=32,
            device="cuda",
        )
        row.batch_ms, row.example_ms, row.iqr_pct, row.speedup = batch_ms, batch_ms / 32, 0.41, speedup
        row.speedup_ci = [speedup - 0.01, speedup + 0.01]
        row.head_ms, row.head_floor_ms, row.peak_mem_mib = 1.234, 0.987, 4321.0
        row.paper_example_ms, row.paper_speedup = 12.3, 1.9
        row.sm_clock_mhz, row.energy_mj_per_batch, row.energy_ratio = 1980.0, 12345.6, 1.51
        return row

    return [row(1, 361.234, 1.0), row(2**18, 544.321, 1.507)]


SPEED_HEADERS = ["ms/batch", "ms/ex", "IQR %", "speedup", "95% CI", "paper ms/ex", "paper speedup", "head ms"]
SPEED_HEADERS += ["head floor ms", "peak MiB", "SM MHz", "mJ/batch", "energy ratio"]


def test_speed_table_at_80_columns_keeps_the_essential_numbers_whole_and_names_the_rest():
    text = rendered(speed_table(speed_rows(), title="Forward time"), 80)
    assert_fits(text, 80)
    for essential in ("resnet50", "2^18", "544.321", "17.0100", "×1.51", "ms/batch", "ms/ex", "speedup"):
        assert essential in text
    assert "columns left out at 80 columns (" in text and "--wide, or the CSV/JSON" in " ".join(text.split())
    assert "energy ratio" in text.split("left out")[1]  # named in the line below the table, not shown


@pytest.mark.parametrize("wide", [False, True])
def test_speed_table_at_200_columns_or_wide_shows_every_column(wide):
    width = 80 if wide else 200
    text = rendered(speed_table(speed_rows(), title="Forward time", wide=wide), width, wide=wide)
    header = "".join(text.split("┡")[0])
    for name in SPEED_HEADERS:
        assert all(word in header for word in name.split()), name
    assert "columns left out" not in text and ELLIPSIS not in text
    assert "12345.6" in text and "1980" in text


# ---- evaluate and train's Table I --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def logits_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("logits") / "a-results-folder-with-a-long-name" / "run-2026-12-01-seed-0"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    paths = []
    for name, boost in (("cross-entropy-with-a-long-file-name.npz", 1.0), ("pols-run.npz", 3.0)):
        labels = rng.integers(0, 5, size=200)
        logits = rng.normal(size=(200, 5)).astype(np.float32)
        logits[np.arange(200), labels] += boost
        np.savez(folder / name, logits=logits, labels=labels)
        paths.append(folder / name)
    other = folder.parent / "another-folder-with-a-very-long-name-too" / "pols-again.npz"
    other.parent.mkdir()
    np.savez(other, **np.load(paths[1]))
    return [*paths, other]


def test_evaluate_at_80_columns_folds_file_names_and_keeps_the_slc_numbers(logits_files):
    baseline, pols, other = logits_files
    text = invoke(80, "evaluate", pols, other, "--baseline", baseline)
    assert_fits(text, 80)
    assert "pols-run.npz" in text and "pols-again.npz" in text and "run-2026-12-01-seed-0/" in text
    first = text.split("Single logit vs all logits")[0]
    for header in ("1-AUPRC", "1-P@0.9", "1-P@0.99", "mean relative"):
        assert header in first
    assert sum(cell_len(word) == 5 and word[1] == "." for word in first.split()) >= 9  # 0.xyz, whole
    assert "columns left out at 80 columns (" in text and "--wide, or --json" in " ".join(text.split())


def test_evaluate_at_200_columns_and_with_wide_shows_every_column(logits_files):
    baseline, pols, _ = logits_files
    for text in (invoke(200, "evaluate", pols, "--baseline", baseline), invoke(80, "evaluate", "--wide", pols)):
        for header in ("classes", "all logits", "1-pair AUROC", "1-pooled AUPRC", "margin", "|log Z|"):
            assert header in text
        assert "columns left out" not in text and ELLIPSIS not in text


def test_train_table_one_at_80_columns(tmp_path):
    args = ["train", "--loss", "cross-entropy,batch-ce", "--steps", "4", "--lr", "0.1", "--out", tmp_path / "t"]
    text = invoke(80, *args)
    assert_fits(text, 80)
    assert "improvement" in text and "--wide, or table.csv" in " ".join(text.split())
    written = (tmp_path / "t" / "table.txt").read_text()  # the file keeps every column
    assert "1-pooled AUPRC" in written and "|log Z|" in written and "columns left out" not in written


# ---- compare --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def speed_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("speed")
    base, new = folder / "baseline-run.json", folder / "new-run.json"
    base.write_text(json.dumps(speed_payload({1: 2.80, 1024: 2.84, 262144: 4.34})))
    new.write_text(json.dumps(speed_payload({1: 2.80, 1024: 3.20, 262144: 4.30}, seed=1)))
    return base, new


def test_compare_at_80_columns_keeps_change_and_verdict_whole(speed_files):
    text = invoke(80, "compare", *speed_files)
    assert_fits(text, 80)
    for essential in ("resnet50 k=2^18", "resnet50 k=2^10", "+12.6%", "regressed", "1.144x", "baseline", "change"):
        assert essential in text
    assert "262144" not in text
    assert "columns left out at 80 columns (time (info), note): --wide, or --json" in " ".join(text.split())


def test_compare_at_200_columns_and_with_wide_shows_every_column(speed_files):
    for text in (invoke(200, "compare", *speed_files), invoke(80, "compare", "--wide", *speed_files)):
        assert "interval" in text and "time (info)" in text and "note" in text and "2.84 -> 3.20 ms" in text
        assert "columns left out" not in text and ELLIPSIS not in text


def test_benchmark_ids_show_class_counts_as_powers_of_two(tmp_path):
    def payload(mean):
        stats = {"median": mean, "iqr": mean / 100}
        return {"machine_info": {}, "benchmarks": [{"fullname": "t.py::test_head[k=262144]", "stats": stats}]}

    base, new = tmp_path / "a.json", tmp_path / "b.json"
    base.write_text(json.dumps(payload(0.001)))
    new.write_text(json.dumps(payload(0.001)))
    text = invoke(200, "compare", base, new)
    assert "k=2^18" in text and "262144" not in text


# ---- isbe ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def isbe_analysis():
    groups = [drifting_group(seed) for seed in range(3)]
    return analyse(groups, [VARIANT], OPTIONS, timed_from=WARMUP, confidence=0.95)


@pytest.mark.parametrize("width", [80, 60])
def test_isbe_tables_at_80_columns_and_narrower(isbe_analysis, width):
    text = "\n".join(rendered(table, width) for table in isbe_tables(isbe_analysis, [Network.net1]))
    assert_fits(text, width)
    assert "44.4 [44.4, 44.4]" in text  # Table 1's share of ISBE softmax, whole on one line
    assert "-5.56 [-5.56, -5.56] -" in text
    assert ("left out at 60 columns" in text) is (width == 60)


def test_isbe_tables_with_wide_show_every_column(isbe_analysis):
    for wide, width in ((False, 200), (True, 40)):
        text = "\n".join(
            rendered(table, width, wide=wide) for table in isbe_tables(isbe_analysis, [Network.net1], wide=wide)
        )
        assert "fwd ms" in text and "back ms" in text and "share %" in text and "tanh" in text
        assert "columns left out" not in text and ELLIPSIS not in text


# ---- the shared helper --------------------------------------------------------------------------------------


def test_columns_are_picked_by_priority_and_the_essential_ones_always():
    specs = [ColumnSpec("a"), ColumnSpec("b", priority=2), ColumnSpec("c", priority=1), ColumnSpec("d")]
    needs = [10, 10, 10, 10]
    assert pick_columns(specs, needs, table_width([10, 10])) == [0, 3]
    assert pick_columns(specs, needs, table_width([10, 10, 10])) == [0, 2, 3]
    assert pick_columns(specs, needs, 1000) == [0, 1, 2, 3]
    assert pick_columns(specs, needs, 5) == [0, 3]


def test_file_names_break_after_a_slash():
    assert fold_path(Text("results/some/long/folder/name/file.npz"), 18).plain == (
        "results/some/long/\nfolder/name/\nfile.npz"
    )
    assert fold_path(Text("short.npz"), 18).plain == "short.npz"


def test_a_table_never_cuts_a_number_even_when_a_name_is_long():
    table = FittedTable([ColumnSpec("name", justify="left", flexible=True), ColumnSpec("value")])
    table.add_row("a/" * 60 + "end.npz", "123456.789")
    text = rendered(table, 40)
    assert_fits(text, 40)
    assert "123456.789" in text and "end.npz" in text
