"""EvaluationResult's JSON object and per-class frame, and the 1 - value table with Table I's improvement row."""

import numpy as np
import pytest

from slcbench.errors import SlcbenchError
from slcbench.evaluate.evaluation import EvaluationResult, evaluate_logits, metric_settings
from slcbench.evaluate.metrics import ClassMetrics, MetricSettings, Ranking, threshold_key
from slcbench.evaluate.report import (
    evaluation_table,
    mean_relative_improvement,
    paper_rows,
    table_ii,
    without_shared_folder,
)
from slcbench.evaluate.run import EvaluateRun


def make(boost, seed=0, n=200, k=5, missing_class=False):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k - 1 if missing_class else k, size=n)
    logits = rng.normal(size=(n, k)).astype(np.float32)
    logits[np.arange(n), labels] += boost
    return logits, labels


def test_to_dict_is_the_issue_object_and_skips_classes_without_positives():
    logits, labels = make(2.0, missing_class=True)
    result = evaluate_logits(logits, labels, name="m.npz")
    document = result.to_dict()
    assert list(document) == [
        "file",
        "n_examples",
        "n_classes",
        "classes_evaluated",
        "classes_skipped",
        "slc",
        "all_logits",
        "pols",
        "self_normalization",
        "wall_seconds",
    ]
    assert (document["n_examples"], document["n_classes"]) == (200, 5)
    assert (document["classes_evaluated"], document["classes_skipped"]) == (4, 1)
    assert list(document["slc"]) == ["auprc", "precision_at_0.9", "precision_at_0.99"]
    # The macro mean leaves the class without positives out (scikit-learn would average in a 0).
    per_class = result.per_class
    slc = per_class[per_class.ranking == "slc"]
    assert np.isnan(slc.auprc.iloc[4])
    assert document["slc"]["auprc"] == pytest.approx(slc.auprc.iloc[:4].mean())
    assert document["slc"]["auprc"] > slc.auprc.fillna(0).mean()


def test_per_class_frame_concatenates_files():
    results = [evaluate_logits(*make(b, seed=b), name=f"m{b}") for b in (1, 2)]
    frame = EvaluateRun(tuple(results)).per_class_frame()
    assert frame.file.tolist() == ["m1"] * 10 + ["m2"] * 10
    assert frame.columns[0] == "file"


def test_mean_relative_improvement_is_tables_one_row():
    # Paper, ImageNet: (0.366 - 0.245) / 0.366 = 33.1%.
    assert mean_relative_improvement([0.366], [0.245]) == pytest.approx(0.3306, abs=1e-4)
    assert mean_relative_improvement([0.2, 0.4], [0.1, 0.2, 0.3]) == pytest.approx((0.3 - 0.2) / 0.3)


def test_table_orders_baseline_first_bolds_best_and_adds_improvement_row():
    ce = evaluate_logits(*make(1.0), name="ce")
    pols = evaluate_logits(*make(3.0), name="pols")
    table = evaluation_table([pols, ce], baseline_names=["ce"])
    names = list(table.columns[0].cells)
    assert names == ["ce", "pols", "mean relative improvement"]
    slc_auprc = list(table.columns[2].cells)
    assert slc_auprc[0] == f"{1 - ce.to_dict()['slc']['auprc']:.3f}"
    assert slc_auprc[1] == f"[bold]{1 - pols.to_dict()['slc']['auprc']:.3f}[/bold]"
    expected = mean_relative_improvement([1 - ce.to_dict()["slc"]["auprc"]], [1 - pols.to_dict()["slc"]["auprc"]])
    assert slc_auprc[2] == f"{100 * expected:.1f}%"
    margin = list(table.columns[-2].cells)
    assert margin[2] == "—" and margin[1].startswith("[bold]")  # margin: higher is better, no ratio


def test_table_without_baseline_has_no_improvement_row():
    table = evaluation_table([evaluate_logits(*make(1.0), name="a")])
    assert list(table.columns[0].cells) == ["a"]


@pytest.mark.parametrize(
    ("names", "short", "folder"),
    [
        (["/runs/a/ce.npz", "/runs/a/nce.npz"], ["ce.npz", "nce.npz"], "/runs/a"),
        (["/runs/a/m.npz", "/runs/b/m.npz"], ["a/m.npz", "b/m.npz"], "/runs"),
        (["runs/m.npz"], ["m.npz"], "runs"),
        (["CE", "NCE"], ["CE", "NCE"], ""),
        (["ce.npz", "runs/ce.npz"], ["ce.npz", "runs/ce.npz"], ""),
    ],
)
def test_rows_are_named_without_the_folder_all_files_share(names, short, folder):
    assert without_shared_folder(names) == (short, folder)


def test_long_paths_that_differ_at_the_end_stay_distinguishable():
    deep = "/a-long-folder-name/for-runs-of-experiments/with-many-levels/of-nesting/"
    results = [evaluate_logits(*make(b, seed=b), name=deep + f"loss-{b}.npz") for b in (1, 2)]
    table = evaluation_table(results)
    assert list(table.columns[0].cells) == ["loss-1.npz", "loss-2.npz"]
    assert table.caption.endswith("; files in " + deep.rstrip("/"))


def test_recall_levels_that_round_alike_keep_separate_keys_or_are_refused():
    result = evaluate_logits(*make(2.0), name="m", settings=metric_settings(recalls=(0.9999999, 1.0)))
    assert list(result.to_dict()["slc"]) == ["auprc", "precision_at_0.9999999", "precision_at_1"]
    with pytest.raises(SlcbenchError, match="15 significant digits"):
        evaluate_logits(
            *make(2.0), name="m", settings=metric_settings(recalls=(0.1234567890123451, 0.1234567890123452))
        )


def test_warnings_for_classes_without_positives_and_for_half_precision_ties():
    logits, labels = make(2.0, missing_class=True)
    assert evaluate_logits(logits, labels).warnings == (
        "1 of 5 classes have no positive example; they are left out of the means",
    )
    coarse = (np.round(logits * 2) / 2).astype(np.float16)  # 0.5 steps: most neighbours tie
    (line,) = [w for w in evaluate_logits(coarse, labels).warnings if "float16" in w]
    assert line.startswith("float16 logits: ") and "of sorted neighbours tie" in line
    rng = np.random.default_rng(1)
    spread = np.stack([rng.permutation(200) for _ in range(5)], axis=1).astype(np.float16)  # distinct, exact
    assert not [w for w in evaluate_logits(spread, labels).warnings if "float16" in w]


def test_a_registered_metric_reaches_the_json_the_csv_and_the_table():
    """A new metric is one registration: here per-class ROC AUC of each ranking, and a set-level count."""
    from sklearn.metrics import roc_auc_score

    from slcbench.evaluate.metrics import CLASS_METRICS, SET_METRICS, ClassMetric, Column, SetMetric

    def roc_auc(ranked):
        scores, positives = ranked.sorted_scores, ranked.sorted_positives
        below = np.searchsorted(scores, positives, "left") - np.searchsorted(positives, positives, "left")
        ties = np.searchsorted(scores, positives, "right") - np.searchsorted(scores, positives, "left")
        ties -= np.searchsorted(positives, positives, "right") - np.searchsorted(positives, positives, "left")
        negatives = scores.size - positives.size
        return ((below.sum() + ties.sum() / 2) / (positives.size * negatives),)

    CLASS_METRICS.register("auroc", ClassMetric(lambda settings: (Column("auroc", "AUROC"),), roc_auc))
    SET_METRICS.register("examples", SetMetric(Column("examples", "n", complement=False), lambda c: float(c.n)))
    try:
        logits, labels = make(1.0)
        result = evaluate_logits(logits, labels, name="m")
        expected = [roc_auc_score(labels == j, logits[:, j]) for j in range(5)]
        assert result.to_dict()["slc"]["auroc"] == pytest.approx(np.mean(expected))
        assert result.to_dict()["pols"]["examples"] == 200.0
        frame = EvaluateRun((result,)).per_class_frame()
        np.testing.assert_allclose(frame[frame.ranking == "slc"].auroc, expected)
        headers = [column.header for column in evaluation_table([result]).columns]
        assert "SLC\n1-AUROC" in headers and "all logits\n1-AUROC" in headers and "PoLS\nn" in headers
    finally:
        CLASS_METRICS.unregister("auroc")
        SET_METRICS.unregister("examples")


def paper_result(name, slc_one_minus, all_logits_one_minus=(0.5, 0.5, 0.5)):
    """A result whose single-class macro values are 1 - the given Table I/II entries (AUPRC, P@0.9, P@0.99)."""
    settings = MetricSettings()
    keys = ["auprc", "precision_at_0.9", "precision_at_0.99"]

    def block(one_minus, ranking):
        values = {key: np.array([1 - v]) for key, v in zip(keys, one_minus, strict=True)}
        values.update({threshold_key(r): np.array([0.0]) for r in settings.recalls})
        return ClassMetrics(np.array([1]), values, settings, ranking, np.zeros(1, np.int64))

    blocks = {"slc": block(slc_one_minus, Ranking.slc), "all_logits": block(all_logits_one_minus, Ranking.all_logits)}
    return EvaluationResult(name, 1, 1, np.array([1]), settings, blocks, {})


# The paper's MNIST rows (Table I; Table II's "CE with all logits"): 1-AUPRC, 1-P@0.9, 1-P@0.99.
MNIST_TABLE_I = {
    "CE": (0.008, 0.005, 0.203),
    "max-margin": (0.012, 0.018, 0.262),
    "self-norm": (0.002, 0.001, 0.021),
    "NCE": (0.002, 0.002, 0.021),
    "binary CE": (0.002, 0.000, 0.037),
    "batch CE": (0.001, 0.001, 0.022),
    "batch max-margin": (0.002, 0.001, 0.034),
}
MNIST_CE_ALL_LOGITS = (0.001, 0.000, 0.020)


def test_the_paper_rows_reproduce_tables_one_and_two_on_mnist():
    results = [
        paper_result(name, values, MNIST_CE_ALL_LOGITS if name == "CE" else (0.5, 0.5, 0.5))
        for name, values in MNIST_TABLE_I.items()
    ]
    rows = paper_rows(results, ["CE", "max-margin"])
    # Table I: 82.0%, 91.3%, 88.4%; Table II, "Mean PoLS methods": 0.002, 0.001, 0.027.
    improvement = [rows.improvement[key] for key in ("auprc", "precision_at_0.9", "precision_at_0.99")]
    np.testing.assert_allclose(improvement, [0.820, 0.913, 0.884], atol=0.0005)
    pols_mean = [1 - rows.pols_mean[key] for key in ("auprc", "precision_at_0.9", "precision_at_0.99")]
    np.testing.assert_allclose(pols_mean, [0.002, 0.001, 0.027], atol=0.0005)
    assert rows.to_dict()["baseline_with_all_logits"]["CE"]["auprc"] == pytest.approx(1 - 0.001)

    second = table_ii(results, baseline_names=["CE", "max-margin"])
    assert [column.header for column in second.columns] == ["method", "1-AUPRC", "1-P@0.9", "1-P@0.99"]
    assert list(second.columns[0].cells) == [
        "mean of PoLS runs, single logit",
        "CE, all logits",
        "max-margin, all logits",
    ]
    assert [list(column.cells)[:2] for column in second.columns[1:]] == [
        ["0.002", "0.001"],
        ["0.001", "0.000"],
        ["0.027", "0.020"],
    ]


def test_the_improvement_row_is_only_where_the_paper_defines_it():
    ce = evaluate_logits(*make(1.0), name="ce")
    pols = evaluate_logits(*make(3.0), name="pols")
    table = evaluation_table([ce, pols], baseline_names=["ce"])
    last = {column.header: list(column.cells)[-1] for column in table.columns}
    assert last["SLC\n1-AUPRC"].endswith("%") and last["SLC\n1-P@0.99"].endswith("%")
    undefined = [h for h, cell in last.items() if cell == "—"]
    assert undefined == [h for h in last if h.split("\n")[0] in ("all logits", "PoLS", "self-norm")]
    assert "Table I row, for the SLC columns (—: not defined)" in table.caption
    document = EvaluateRun((ce, pols), ("ce",)).document()
    assert list(document["paper_rows"]["mean_relative_improvement"]) == ["slc"]


def test_no_table_ii_without_baseline_others_or_both_rankings():
    ce, pols = (evaluate_logits(*make(b), name=n) for b, n in ((1.0, "ce"), (3.0, "pols")))
    assert table_ii([ce, pols]) is None and table_ii([ce], baseline_names=["ce"]) is None
    assert table_ii([ce, pols], baseline_names=["ce"]) is not None
    only_slc = [evaluate_logits(*make(b), name=n, blocks=["slc"]) for b, n in ((1.0, "ce"), (3.0, "pols"))]
    assert table_ii(only_slc, baseline_names=["ce"]) is None
    assert "paper_rows" not in EvaluateRun((ce, pols)).document()
