"""The ``slcbench env`` command."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from slcbench.console import report_console
from slcbench.device import DeviceChoice, resolve_device
from slcbench.options import DeviceOption, friendly_errors


def env(
    device: DeviceOption = DeviceChoice.auto,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Print what a benchmark report needs: device, driver, CUDA, torch/torchvision/timm, CPU, threads."""
    from slcbench.env.collect import collect_environment
    from slcbench.env.report import environment_table

    environment = collect_environment(resolve_device(device))
    if as_json:
        typer.echo(json.dumps(environment, indent=2))
    else:
        report_console().print(environment_table(environment))


env_command = friendly_errors(env)
