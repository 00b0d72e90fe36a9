"""The ``slcbench train`` command: parse the options, train each loss, print and write the results."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from slcbench.console import TaskProgress, print_table, print_written, report_console
from slcbench.device import DeviceChoice
from slcbench.options import DeviceOption, ForceOption, SeedOption, WideOption, friendly_errors
from slcbench.train.config import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_MARGIN,
    DEFAULT_NCE_EXACT_MAX_K,
    DEFAULT_NCE_NOISE_SAMPLES,
    DEFAULT_SELF_NORM_ALPHA,
    DIGITS_STEPS,
    PAPER_STEPS,
    DatasetName,
)


def _list_losses(value: bool) -> None:
    """Print the registered losses (name, Table I row, PoLS alignment, in the paper) and exit."""
    if not value:
        return
    from rich.table import Table

    from slcbench.train.losses import LOSSES

    table = Table(title="Losses (--loss NAME[,NAME...] or all = the paper's seven)")
    for header in ("name", "row in tables", "PoLS-aligned", "in the paper"):
        table.add_column(header)
    for name, spec in LOSSES.items():
        table.add_row(name, spec.title, "yes" if spec.pols_aligned else "no", "yes" if spec.in_paper else "no")
    report_console().print(table)
    raise typer.Exit()


def command_line(prefix: str, params: dict[str, Any]) -> str:
    """The command with every option spelled out (defaults included), to repeat a run exactly."""
    parts = [prefix]
    for name, value in params.items():
        if value is None or value is False:
            continue
        parts.append(f"--{name.replace('_', '-')}")
        if value is not True:
            parts.append(str(value.value if isinstance(value, Enum) else value))
    return " ".join(parts)


def train(
    ctx: typer.Context,
    loss: Annotated[
        str,
        typer.Option(
            help="Losses to train, comma-separated (--list-losses shows them), or 'all' "
            "(the paper's seven, in Table I order)."
        ),
    ] = "all",
    dataset: Annotated[
        DatasetName,
        typer.Option(
            help="digits = scikit-learn's bundled 8x8 digits (offline); the others are read from --data-dir.",
            case_sensitive=False,
        ),
    ] = DatasetName.digits,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            help="Folder with the data set in torchvision's "
            "layout (MNIST/raw/..., cifar-10-batches-py/, cifar-100-python/, "
            "train_32x32.mat). Never downloaded.",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="One loss: the .npz to write \\[default: "
            "runs/LOSS-DATASET.npz]. Several: a folder for LOSS.npz files and the "
            "table \\[default: runs/train-DATASET].",
            show_default=False,
        ),
    ] = None,
    steps: Annotated[
        int | None,
        typer.Option(
            help=f"Optimizer steps per run \\[default: {DIGITS_STEPS} on digits, the paper's {PAPER_STEPS} otherwise].",
            show_default=False,
        ),
    ] = None,
    batch_size: Annotated[
        int, typer.Option(help="Examples per batch (the batch losses use the batch).")
    ] = DEFAULT_BATCH_SIZE,
    lr: Annotated[
        float | None,
        typer.Option(
            "--lr",
            help="Use this learning rate instead of choosing from 1, 0.1, 0.01, 0.001 by validation accuracy.",
            show_default=False,
        ),
    ] = None,
    margin: Annotated[float, typer.Option(help="γ of max-margin and batch max-margin.")] = DEFAULT_MARGIN,
    alpha: Annotated[float, typer.Option(help="α of self-normalization.")] = DEFAULT_SELF_NORM_ALPHA,
    nce_samples: Annotated[
        int,
        typer.Option(
            "--nce-samples", help="t of NCE: weight of the noise term and, when sampling, noise classes per example."
        ),
    ] = DEFAULT_NCE_NOISE_SAMPLES,
    nce_exact_max_k: Annotated[
        int,
        typer.Option(
            "--nce-exact-max-k",
            help="NCE sums its expectation exactly up to this many classes and samples t noise classes above.",
        ),
    ] = DEFAULT_NCE_EXACT_MAX_K,
    threads: Annotated[
        int | None,
        typer.Option(
            help="CPU threads for torch \\[default: 1 on the CPU, so that runs repeat bit for bit and the small "
            "networks run fastest; torch's choice on CUDA].",
            show_default=False,
        ),
    ] = None,
    device: DeviceOption = DeviceChoice.auto,
    seed: SeedOption = 0,
    force: ForceOption = False,
    wide: WideOption = False,
    list_losses: Annotated[
        bool, typer.Option("--list-losses", callback=_list_losses, is_eager=True, help="List the losses and exit.")
    ] = False,
) -> None:
    """Train the paper's model with each loss and save its test logits for `slcbench evaluate`.

    With several losses, print the paper's Table I (PoLS-aligned losses below the rule).
    """
    from slcbench.train.config import LossSettings
    from slcbench.train.run import run_training, training_job

    job = training_job(
        loss=loss,
        dataset=dataset,
        data_dir=data_dir,
        out=out,
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        loss_settings=LossSettings(
            margin=margin, self_norm_alpha=alpha, nce_noise_samples=nce_samples, nce_exact_max_k=nce_exact_max_k
        ),
        threads=threads,
        device=device,
        seed=seed,
        force=force,
    )
    console = report_console()
    params = {k: v for k, v in ctx.params.items() if k not in ("list_losses", "wide")}
    with TaskProgress(console) as progress:
        run = run_training(job, command=command_line("slcbench train", params), progress=progress)
    table = run.table(wide=wide)
    if table is not None:
        print_table(console, table, wide=wide)
        print_written(console, run.write())


train_command = friendly_errors(train)
