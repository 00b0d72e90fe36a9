"""``slcbench env``: the environment a benchmark report needs, as a table or as JSON."""

import json

import pytest
import torch
from typer.testing import CliRunner

from slcbench.cli import app

runner = CliRunner()

REPORT_FIELDS = (
    "device_type",
    "device_name",
    "driver",
    "cuda_runtime",
    "torch",
    "torchvision",
    "timm",
    "cpu",
    "torch_threads",
)


def test_env_json_has_every_field_a_report_needs():
    result = runner.invoke(app, ["env", "--json", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    env = json.loads(result.stdout)
    assert set(REPORT_FIELDS) <= set(env)
    assert env["torch"] == torch.__version__
    assert env["torch_threads"] == torch.get_num_threads()
    assert env["device_type"] == "cpu" and env["device_name"] == env["cpu"] and env["driver"] is None


def test_env_table_shows_the_same_values():
    result = runner.invoke(app, ["env", "--device", "cpu"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for field in REPORT_FIELDS:
        assert field in result.stdout
    assert torch.__version__ in result.stdout


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
def test_env_on_cuda_without_cuda_is_a_one_line_error():
    result = runner.invoke(app, ["env", "--device", "cuda"])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "slcbench: error: --device cuda was requested but no CUDA device is available"
    ]


def test_cudnn_versions_are_written_as_people_write_them():
    from slcbench.env.collect import format_cudnn_version

    assert format_cudnn_version(92400) == "9.24.0"  # cuDNN 9: major * 10000 + minor * 100 + patch
    assert format_cudnn_version(90100) == "9.1.0"
    assert format_cudnn_version(8907) == "8.9.7"  # cuDNN 8 and older: major * 1000 + minor * 100 + patch
    assert format_cudnn_version(7605) == "7.6.5"
    assert format_cudnn_version(None) is None


def test_env_keeps_cudnns_integer_in_json_and_shows_the_version_in_the_table():
    env = json.loads(runner.invoke(app, ["env", "--json", "--device", "cpu"]).stdout)
    assert "cudnn" in env and "cudnn_version" in env
    table = runner.invoke(app, ["env", "--device", "cpu"], env={"COLUMNS": "200"}).stdout
    if env["cudnn"] is not None:
        assert env["cudnn_version"] in table and str(env["cudnn"]) not in table
