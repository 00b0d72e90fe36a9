"""Blocks: choosing them, timing them, the self-normalization block against float64 references, and a
block registered from outside reaching the JSON and the table."""

import numpy as np
import pytest
from scipy.special import log_softmax, logsumexp

from slcbench.errors import SlcbenchError
from slcbench.evaluate.backend import NumpyBackend
from slcbench.evaluate.blocks import BLOCKS, Block, block_keys
from slcbench.evaluate.evaluation import evaluate_logits
from slcbench.evaluate.metrics import Column, SetMetrics, self_normalization_metrics
from slcbench.evaluate.report import evaluation_table
from slcbench.evaluate.run import EvaluateRun


def make(n=300, k=6, seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, size=n)
    logits = rng.normal(size=(n, k)) * scale
    logits[np.arange(n), labels] += 2
    return logits.astype(np.float32), labels


def test_block_names_are_the_options_or_the_keys_and_come_back_in_registration_order():
    assert block_keys() == ("slc", "all_logits", "pols", "self_normalization")
    assert block_keys(["self-norm", "slc"]) == ("slc", "self_normalization")
    assert block_keys(["all_logits", "all-logits", "pols"]) == ("all_logits", "pols")
    with pytest.raises(SlcbenchError, match="unknown block 'all' for --blocks; choose from: slc, all-logits, pols"):
        block_keys(["all"])
    with pytest.raises(SlcbenchError, match="--blocks is empty"):
        block_keys([])


def test_each_block_alone_gives_the_numbers_it_gives_among_all_and_its_own_time():
    logits, labels = make()
    everything = evaluate_logits(logits, labels)
    assert list(everything.seconds) == ["check", "slc", "all_logits", "pols", "self_normalization"]
    for key in BLOCKS.names():
        alone = evaluate_logits(logits, labels, blocks=[key])
        assert list(alone.block_values) == [key] and list(alone.seconds) == ["check", key]
        assert alone.blocks() == {key: everything.blocks()[key]}
        document = alone.to_dict(wall_seconds=False)
        assert [name for name in BLOCKS.names() if name in document] == [key]
    with pytest.raises(SlcbenchError, match="the slc block was not computed"):
        evaluate_logits(logits, labels, blocks=["pols"]).slc


def test_a_set_block_alone_makes_a_table_and_an_empty_per_class_frame():
    logits, labels = make()
    result = evaluate_logits(logits, labels, blocks=["pols"], name="m")
    headers = [column.header for column in evaluation_table([result]).columns]
    assert headers == ["logits", "classes\nevaluated", "PoLS\n1-pair AUROC", "PoLS\n1-pooled AUPRC", "PoLS\nmargin"]
    assert EvaluateRun((result,)).per_class_frame().empty


def test_threads_do_not_change_a_number():
    logits, labels = make(n=500, k=40)
    small = NumpyBackend(
        block_bytes=500 * 8 * 3, tile_elements=64, row_chunk_elements=400, pols_chunk_elements=(400, 400)
    )
    one = evaluate_logits(logits, labels, threads=1, backend=small)
    two = evaluate_logits(logits, labels, threads=2, backend=small)
    assert one.to_dict(wall_seconds=False) == two.to_dict(wall_seconds=False)
    assert one.per_class.equals(two.per_class)


@pytest.mark.parametrize(("scale", "k", "dtype"), [(1.0, 6, np.float32), (300.0, 6, np.float64), (1.0, 2, np.float64)])
def test_self_normalization_against_scipy_in_float64(scale, k, dtype):
    logits, labels = make(k=k, scale=scale)
    logits = (logits.astype(np.float64) + np.linspace(-50, 50, len(labels))[:, None]).astype(dtype)
    z = logits.astype(np.float64)
    log_z = logsumexp(z, axis=1)
    gap = z[np.arange(len(labels)), labels] - log_softmax(z, axis=1)[np.arange(len(labels)), labels]
    values = evaluate_logits(logits, labels).blocks()["self_normalization"]
    assert values["log_z_mean"] == pytest.approx(log_z.mean(), rel=1e-13, abs=1e-12)
    assert values["log_z_std"] == pytest.approx(log_z.std(), rel=1e-11, abs=1e-12)
    assert values["mean_abs_gap"] == pytest.approx(np.abs(gap).mean(), rel=1e-12, abs=1e-12)


def test_self_normalized_logits_have_no_gap_and_a_shift_shows_as_it_is():
    logits, labels = make()
    log_probabilities = log_softmax(logits.astype(np.float64), axis=1)  # log Z = 0 in every row
    exact = self_normalization_metrics(log_probabilities).values
    assert abs(exact["log_z_mean"]) < 1e-15 and exact["log_z_std"] < 1e-15 and exact["mean_abs_gap"] < 1e-15
    shift = np.linspace(-2, 1, len(labels))
    shifted = self_normalization_metrics(log_probabilities + shift[:, None]).values
    assert shifted["log_z_mean"] == pytest.approx(shift.mean(), abs=1e-14)
    assert shifted["log_z_std"] == pytest.approx(shift.std(), abs=1e-14)
    assert shifted["mean_abs_gap"] == pytest.approx(np.abs(shift).mean(), abs=1e-14)


def test_the_table_shows_the_gap_lower_is_better():
    logits, labels = make()
    near = log_softmax(logits.astype(np.float64), axis=1) + 0.1
    results = [evaluate_logits(logits, labels, name="raw"), evaluate_logits(near, labels, name="near")]
    table = evaluation_table(results)
    (gap,) = [c for c in table.columns if c.header == "self-norm\n|log Z|"]
    assert list(gap.cells) == [f"{results[0].self_normalization.values['mean_abs_gap']:.3f}", "[bold]0.100[/bold]"]


def test_a_registered_block_reaches_the_json_and_the_table():
    """A new block is one registration: here the number of examples, as a set block."""
    BLOCKS.register(
        "examples",
        Block(
            "examples",
            "examples",
            "count",
            lambda settings: (Column("n", "examples", complement=False),),
            lambda scoring: SetMetrics({"n": float(len(scoring.labels))}),
        ),
    )
    try:
        logits, labels = make()
        result = evaluate_logits(logits, labels, name="m")
        assert result.to_dict()["examples"] == {"n": 300.0} and "examples" in result.seconds
        assert evaluate_logits(logits, labels, blocks=["examples"]).blocks() == {"examples": {"n": 300.0}}
        document = EvaluateRun((result,)).document()
        assert document["results"][0]["examples"] == {"n": 300.0}
        assert "count\nexamples" in [column.header for column in evaluation_table([result]).columns]
    finally:
        BLOCKS.unregister("examples")
