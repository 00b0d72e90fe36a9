"""The ISBE experiment's settings: the option grid, validation of every input, torch-free imports."""

import subprocess
import sys
from pathlib import Path

import pytest

from slcbench.errors import SlcbenchError
from slcbench.isbe.config import (
    ISBE_ACTIVATIONS,
    IsbeConfig,
    IsbeDataset,
    LossKind,
    LossOption,
    Network,
    Reduction,
    parse_seeds,
)
from slcbench.train.losses import IsbeActivation


def test_activation_names_are_the_loss_modules():
    assert tuple(a.value for a in IsbeActivation) == ISBE_ACTIVATIONS


def test_default_grid_is_the_papers_options_with_relocation_and_blurred_targets(tmp_path):
    config = IsbeConfig(output=tmp_path)
    names = [o.name for o in config.options()]
    assert names[:3] == ["ce-none", "ce-mean", "ce-sum"]
    assert names[3:8] == [f"isbe-{a}-none" for a in ISBE_ACTIVATIONS]
    assert names[8:] == [f"isbe-{a}-none-blurred" for a in ISBE_ACTIVATIONS]
    assert [v.name for v in config.variants()] == ["net1", "net1-relocated", "net2", "net2-relocated"]
    assert config.dataset is IsbeDataset.digits and config.seeds == (0, 1, 2)
    every_reduction = IsbeConfig(output=tmp_path, isbe_reductions=tuple(Reduction), blur=0.0).options()
    assert [o.name for o in every_reduction][3:] == [
        f"isbe-{a}-{r}" for r in ("none", "mean", "sum") for a in ISBE_ACTIVATIONS
    ]


def test_no_blur_drops_the_blurred_options_and_blurred_options_take_the_first_reduction(tmp_path):
    assert not any(o.blurred for o in IsbeConfig(output=tmp_path, blur=0.0).options())
    config = IsbeConfig(output=tmp_path, isbe_reductions=(Reduction.sum,), activations=("tanh",))
    assert [o.name for o in config.options()] == [
        "ce-none",
        "ce-mean",
        "ce-sum",
        "isbe-tanh-sum",
        "isbe-tanh-sum-blurred",
    ]


def test_from_options_parses_lists_seeds_and_picks_mnist_with_a_data_dir(tmp_path):
    config = IsbeConfig.from_options(
        networks="net2",
        relocation="on",
        activations="tanh,softmax",
        isbe_reductions="mean",
        seeds="3-5,1",
        output=tmp_path,
    )
    assert config.networks == (Network.net2,) and config.relocations == (True,)
    assert config.activations == ("tanh", "softmax") and config.isbe_reductions == (Reduction.mean,)
    assert config.seeds == (3, 4, 5, 1)
    assert IsbeConfig.from_options(data_dir=tmp_path, output=tmp_path).dataset is IsbeDataset.mnist
    assert parse_seeds("0,0,1") == (0, 1)


def test_tiny_keeps_every_option_and_network_on_a_few_steps(tmp_path):
    config = IsbeConfig(output=tmp_path)
    tiny = config.tiny()
    assert tiny.options() == config.options() and tiny.variants() == config.variants()
    assert (tiny.seeds, tiny.epochs, tiny.steps_per_epoch, tiny.timed_from_step) == ((0, 1), 2, 3, 2)


def test_warm_up_is_rounded_up_to_whole_abba_blocks(tmp_path):
    assert IsbeConfig(output=tmp_path, warmup_steps=3).timed_from_step == 4
    assert IsbeConfig(output=tmp_path, warmup_steps=0).timed_from_step == 0


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"networks": "net3"}, "--networks 'net3': choose from net1, net2"),
        ({"activations": "relu"}, "--activations 'relu'"),
        ({"isbe_reductions": "max"}, "--isbe-reductions 'max'"),
        ({"relocation": ""}, "--relocation ''"),
        ({"seeds": "a"}, "--seeds a: give non-negative integers"),
        ({"seeds": "-1"}, "--seeds"),
        ({"epochs": 0}, "--epochs must be at least 1"),
        ({"batch_size": 1}, "--batch-size must be at least 2"),
        ({"warmup_steps": -1}, "--warmup-steps must be at least 0"),
        ({"steps_per_epoch": 0}, "--steps-per-epoch must be at least 1"),
        ({"threads": 0}, "--threads must be at least 1"),
        ({"learning_rate": float("nan")}, "--lr must be positive"),
        ({"blur": 0.9}, "--blur must lie in [0, 0.9)"),
        ({"blur": -0.1}, "--blur must lie"),
        ({"confidence": 1.0}, "--confidence must lie in [0.5, 1)"),
        ({"dataset": IsbeDataset.digits, "data_dir": Path(".")}, "--data-dir is read for MNIST only"),
    ],
)
def test_bad_settings_are_one_clear_error(tmp_path, settings, message):
    with pytest.raises(SlcbenchError) as error:
        IsbeConfig.from_options(output=tmp_path, **settings)
    assert message in str(error.value)


def test_an_output_path_that_is_a_file_is_refused_before_any_work(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(SlcbenchError, match="not a folder"):
        IsbeConfig(output=tmp_path / "file")


def test_loss_options_refuse_impossible_combinations():
    with pytest.raises(SlcbenchError):
        LossOption(LossKind.ce, Reduction.mean, "tanh")
    with pytest.raises(SlcbenchError):
        LossOption(LossKind.isbe, Reduction.mean, None)
    option = LossOption(LossKind.isbe, Reduction.none, "hardtanh", blurred=True)
    assert (option.name, option.title, option.targets) == (
        "isbe-hardtanh-none-blurred",
        "ISBE hardtanh (none, blurred)",
        "none, blurred",
    )


@pytest.mark.parametrize(
    "module", ["slcbench.isbe.cli", "slcbench.isbe.config", "slcbench.isbe.analysis", "slcbench.isbe.report"]
)
def test_the_command_line_and_the_analysis_import_no_torch(module):
    code = f"import sys, {module}; print(sorted(m for m in ('torch', 'torchvision') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
