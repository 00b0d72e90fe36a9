"""The ``slcbench isbe`` command: parse the options, run the experiment, print and write the results."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from slcbench.console import TaskProgress, print_table, print_written, report_console
from slcbench.device import DeviceChoice
from slcbench.isbe.config import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_BLUR,
    DEFAULT_CONFIDENCE,
    DEFAULT_CURVE_EXAMPLES,
    DEFAULT_EPOCHS,
    DEFAULT_LEARNING_RATE,
    DEFAULT_SEEDS,
    DEFAULT_WARMUP_STEPS,
    IsbeDataset,
)
from slcbench.options import DeviceOption, OutputDirOption, WideOption, friendly_errors


def isbe(
    networks: Annotated[
        str, typer.Option(help="net1 (two convolutions + two linear layers), net2 (2 × 3 convolutions), or all.")
    ] = "all",
    relocation: Annotated[
        str, typer.Option(help="off, on (a trained bias on the final projection), or all (both).")
    ] = "all",
    activations: Annotated[
        str, typer.Option(help="ISBE activations: softmax, sigmoid, tanh, hardsigmoid, hardtanh, or all.")
    ] = "all",
    isbe_reductions: Annotated[
        str,
        typer.Option(
            "--isbe-reductions",
            help="ISBE reductions: none (the soft error as is, the paper's code), mean (divided by the batch "
            "size), sum, or all; every ISBE option is compared with CE of each reduction.",
        ),
    ] = "none",
    blur: Annotated[
        float,
        typer.Option(
            help="Blurring value ε of the paper's blurred targets (1 − ε on the true class, ε/(k − 1) elsewhere, "
            "rescaled to the activation's range), trained beside the hard targets; 0 = hard targets only."
        ),
    ] = DEFAULT_BLUR,
    seeds: Annotated[str, typer.Option(help="Seeds, e.g. 0,1,2 or 0-9.")] = ",".join(map(str, DEFAULT_SEEDS)),
    epochs: Annotated[int, typer.Option(help="Training epochs.")] = DEFAULT_EPOCHS,
    steps_per_epoch: Annotated[
        int | None, typer.Option(help="At most this many steps per epoch \\[default: the whole training split].")
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Examples per batch.")] = DEFAULT_BATCH_SIZE,
    lr: Annotated[float, typer.Option("--lr", help="Adam's learning rate.")] = DEFAULT_LEARNING_RATE,
    warmup_steps: Annotated[
        int, typer.Option(help="Untimed first steps of each network and seed (rounded up to even).")
    ] = DEFAULT_WARMUP_STEPS,
    curve_examples: Annotated[
        int, typer.Option(help="Training examples the per-epoch training curve is computed on.")
    ] = DEFAULT_CURVE_EXAMPLES,
    confidence: Annotated[float, typer.Option(help="Confidence level of every interval.")] = DEFAULT_CONFIDENCE,
    dataset: Annotated[
        IsbeDataset | None,
        typer.Option(help="digits or mnist \\[default: mnist with --data-dir, else digits].", case_sensitive=False),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option("--data-dir", help="Folder with MNIST/raw/... (torchvision's layout); never downloaded."),
    ] = None,
    device: DeviceOption = DeviceChoice.auto,
    threads: Annotated[int | None, typer.Option(help="CPU threads for torch \\[default: torch's choice].")] = None,
    output: OutputDirOption = Path("runs"),
    plot: Annotated[bool, typer.Option("--plot/--no-plot", help="Write a learning-curve PNG per network.")] = True,
    wide: WideOption = False,
    tiny: Annotated[
        bool, typer.Option("--tiny", help="Two seeds, two epochs of three steps: a seconds-long check (CI).")
    ] = False,
) -> None:
    """Skarbek's ISBE experiment: backprop time share and accuracy of CE against ISBE, with intervals."""
    from slcbench.isbe.config import IsbeConfig

    config = IsbeConfig.from_options(
        networks=networks,
        relocation=relocation,
        activations=activations,
        isbe_reductions=isbe_reductions,
        seeds=seeds,
        dataset=dataset,
        data_dir=data_dir,
        blur=blur,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        batch_size=batch_size,
        learning_rate=lr,
        warmup_steps=warmup_steps,
        curve_examples=curve_examples,
        confidence=confidence,
        device=device,
        threads=threads,
        output=output,
        plot=plot,
    )
    from slcbench.isbe.run import run_isbe  # imports torch, after the options are checked

    command = " ".join(["slcbench", *sys.argv[1:]])
    console = report_console()
    with TaskProgress(console) as progress:
        run = run_isbe(config.tiny() if tiny else config, command=command, progress=progress)
    for table in run.tables(wide=wide):
        print_table(console, table, wide=wide)
    for line in run.notes():
        console.print(line)
    print_written(console, run.write())


isbe_command = friendly_errors(isbe)
