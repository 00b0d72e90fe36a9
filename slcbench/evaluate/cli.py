"""The ``slcbench evaluate`` command: parse the options, score the files, print and write the results."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from slcbench.console import print_table, report_console, warn
from slcbench.evaluate.blocks import BLOCKS
from slcbench.evaluate.evaluation import DEFAULT_RECALLS, EvaluateConfig, EvaluateDevice, metric_settings
from slcbench.evaluate.metrics import AuprcMethod
from slcbench.evaluate.run import evaluate_files
from slcbench.options import ForceOption, WideOption, friendly_errors

BLOCKS_HELP = (
    "Blocks to compute, comma-separated: "
    + ", ".join(block.option for block in BLOCKS.values())
    + " (single logits, softmax over all logits, PoLS diagnostics, log-partition). \\[default: all]"
)
FILES_HELP = (
    "Saved logits: .npz files holding 'logits' (n x k float) and 'labels' (n ints in [0, k)), "
    "or folders with logits.npy and labels.npy (or a logits .npy with labels.npy beside it)."
)


def evaluate(
    files: Annotated[list[Path], typer.Argument(help=FILES_HELP, show_default=False)],
    logits_key: Annotated[
        str, typer.Option("--logits-key", help="Name of the logits array (.npz key or .npy file stem).")
    ] = "logits",
    labels_key: Annotated[
        str, typer.Option("--labels-key", help="Name of the labels array (.npz key or .npy file stem).")
    ] = "labels",
    recall: Annotated[
        list[float] | None,
        typer.Option(
            "--recall",
            help="Recall level r in (0, 1] for Precision@r; repeat for several. \\[default: 0.9, 0.99]",
            show_default=False,
        ),
    ] = None,
    auprc: Annotated[
        AuprcMethod,
        typer.Option(
            "--auprc",
            help="AUPRC estimator: average precision (= scikit-learn) or the trapezoidal area.",
            case_sensitive=False,
        ),
    ] = AuprcMethod.average_precision,
    interpolated: Annotated[
        bool,
        typer.Option(
            "--interpolated",
            help="Precision@r = best precision over thresholds with recall >= r, instead of the "
            "first threshold reaching r.",
        ),
    ] = False,
    baseline: Annotated[
        list[Path] | None,
        typer.Option(
            "--baseline",
            help="Baseline logits (e.g. plain cross-entropy), shown first with a 'mean relative "
            "improvement' row; repeatable.",
            show_default=False,
        ),
    ] = None,
    strict: Annotated[
        bool,
        typer.Option("--strict", help="Make a class without positive examples an error (exit 2) instead of a warning."),
    ] = False,
    json_path: Annotated[
        Path | None,
        typer.Option("--json", help="Write the macro-averaged results (raw values, higher is better) as JSON."),
    ] = None,
    csv_path: Annotated[
        Path | None, typer.Option("--csv", help="Write per-class results (P, AUPRC, Precision@r, T*) as CSV.")
    ] = None,
    blocks: Annotated[str | None, typer.Option("--blocks", help=BLOCKS_HELP, show_default=False)] = None,
    threads: Annotated[
        int | None,
        typer.Option("--threads", help="Worker threads. \\[default: one per CPU]", show_default=False),
    ] = None,
    device: Annotated[
        EvaluateDevice,
        typer.Option(
            "--device",
            help="cpu: NumPy; cuda: torch on a GPU, for logits that dwarf the CPU (needs torch and a CUDA device).",
            case_sensitive=False,
        ),
    ] = EvaluateDevice.cpu,
    force: ForceOption = False,
    wide: WideOption = False,
) -> None:
    """SLC metrics of saved logits: can the logit of class j alone, thresholded, tell class j?

    For each class, AUPRC and Precision@r when examples are ranked by the single logit (SLC), by
    softmax over all logits (the 'all logits' baseline), and PoLS diagnostics over the whole set.
    The table shows 1 - value (lower is better), as the paper's Tables I and II.
    """
    config = EvaluateConfig(
        files=tuple(files),
        baseline=tuple(baseline or ()),
        logits_key=logits_key,
        labels_key=labels_key,
        settings=metric_settings(recall or DEFAULT_RECALLS, auprc, interpolated),
        strict=strict,
        json_path=json_path,
        csv_path=csv_path,
        force=force,
        blocks=None if blocks is None else tuple(name.strip() for name in blocks.split(",") if name.strip()),
        threads=threads,
        device=device,
    )
    run = evaluate_files(config, warn=warn)
    print_table(report_console(), run.table(wide=wide), wide=wide)
    run.write()


evaluate_command = friendly_errors(evaluate)
