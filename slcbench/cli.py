"""The ``slcbench`` command line: a thin typer layer over the library's pure functions.

Every command turns SlcbenchError (bad input, impossible request) into one line on stderr and exit
code 2; it never shows a traceback for a user's mistake. Options that several commands share are
declared once below as ``Annotated`` types.
"""

from __future__ import annotations

import functools
from enum import Enum
from pathlib import Path
from typing import Annotated, Callable, Optional, TypeVar

import typer

from slcbench.errors import SlcbenchError

app = typer.Typer(
    name="slcbench",
    help="Benchmarks for Single Logit Classification (SLC): speed, SLC metrics and PoLS losses.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

EXIT_BAD_INPUT = 2

F = TypeVar("F", bound=Callable[..., object])


def fail(message: str, code: int = EXIT_BAD_INPUT) -> typer.Exit:
    """Print ``slcbench: error: message`` on stderr and return the Exit to raise."""
    typer.echo(f"slcbench: error: {message}", err=True)
    return typer.Exit(code)


def friendly_errors(func: F) -> F:
    """Turn SlcbenchError into one line on stderr and exit code 2, Ctrl-C into exit 130."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except SlcbenchError as exc:
            raise fail(str(exc)) from None
        except KeyboardInterrupt:
            raise fail("interrupted", code=130) from None

    return wrapper  # type: ignore[return-value]


# ---------------------------------------------------------------------------------------------
# Options shared by several commands (declared once, like pytest-benchmark's option groups).
# ---------------------------------------------------------------------------------------------


class DeviceChoice(str, Enum):
    auto = "auto"
    cuda = "cuda"
    cpu = "cpu"


DeviceOption = Annotated[
    DeviceChoice,
    typer.Option("--device", help="Where to run: auto = CUDA when present, else CPU.", case_sensitive=False),
]
ForceOption = Annotated[bool, typer.Option("--force", help="Overwrite output files that already exist.")]
SeedOption = Annotated[int, typer.Option("--seed", help="Random seed (inputs, weights, sampling).")]
OutputDirOption = Annotated[
    Path,
    typer.Option("--output", "-o", help="Folder for results (created if missing); files are new and timestamped."),
]


# ---- speed (issue 2) -------------------------------------------------------------------------

# ---- evaluate (issue 3) ----------------------------------------------------------------------
# Imports live in this region so that each feature's section merges on its own.
from rich.console import Console  # noqa: E402

from slcbench.evaluation import (  # noqa: E402
    DEFAULT_RECALLS,
    check_recalls,
    evaluate_file,
    per_class_frame,
    results_payload,
)
from slcbench.io import write_json_atomic, write_text_atomic  # noqa: E402
from slcbench.metrics import AuprcMethod  # noqa: E402
from slcbench.reporting import evaluation_table  # noqa: E402


def _check_outputs_before_work(outputs: dict[str, Optional[Path]], inputs: list[Path], force: bool) -> None:
    """Refuse, before any computing, outputs that exist (without --force), collide, or would replace an input."""
    named = {option: path for option, path in outputs.items() if path is not None}
    if len({p.resolve() for p in named.values()}) < len(named):
        raise SlcbenchError(f"{' and '.join(named)} name the same file")
    resolved_inputs = {p.resolve() for p in inputs}
    for option, path in named.items():
        if path.resolve() in resolved_inputs:
            raise SlcbenchError(f"{option} {path} is one of the input files; choose another output path")
        if path.is_dir():
            raise SlcbenchError(f"{option} {path} is a folder; give a file name")
        if not path.parent.exists():
            raise SlcbenchError(f"cannot write {path}: folder {path.parent} does not exist")
        if path.exists() and not force:
            raise SlcbenchError(f"{path} already exists; pass --force to overwrite it")


@app.command()
@friendly_errors
def evaluate(
    files: Annotated[
        list[Path],
        typer.Argument(
            help="Saved logits: .npz files holding 'logits' (n x k float) and 'labels' (n ints in [0, k)), "
            "or folders with logits.npy and labels.npy (or a logits .npy with labels.npy beside it).",
            show_default=False,
        ),
    ],
    logits_key: Annotated[str, typer.Option("--logits-key", help="Name of the logits array (.npz key or .npy file stem).")] = "logits",
    labels_key: Annotated[str, typer.Option("--labels-key", help="Name of the labels array (.npz key or .npy file stem).")] = "labels",
    recall: Annotated[
        Optional[list[float]],
        typer.Option("--recall", help="Recall level r in (0, 1] for Precision@r; repeat for several. [default: 0.9, 0.99]", show_default=False),
    ] = None,
    auprc: Annotated[
        AuprcMethod,
        typer.Option("--auprc", help="AUPRC estimator: average precision (= scikit-learn) or the trapezoidal area.", case_sensitive=False),
    ] = AuprcMethod.average_precision,
    interpolated: Annotated[
        bool,
        typer.Option("--interpolated", help="Precision@r = best precision over thresholds with recall >= r, instead of the first threshold reaching r."),
    ] = False,
    baseline: Annotated[
        Optional[list[Path]],
        typer.Option("--baseline", help="Baseline logits (e.g. plain cross-entropy), shown first with a 'mean relative improvement' row; repeatable.", show_default=False),
    ] = None,
    json_path: Annotated[Optional[Path], typer.Option("--json", help="Write the macro-averaged results (raw values, higher is better) as JSON.")] = None,
    csv_path: Annotated[Optional[Path], typer.Option("--csv", help="Write per-class results (P, AUPRC, Precision@r, T*) as CSV.")] = None,
    force: ForceOption = False,
) -> None:
    """SLC metrics of saved logits: can the logit of class j alone, thresholded, tell class j?

    For each class, AUPRC and Precision@r when examples are ranked by the single logit (SLC), by
    softmax over all logits (the 'all logits' baseline), and PoLS diagnostics over the whole set.
    The table shows 1 - value (lower is better), as the paper's Tables I and II.
    """
    recalls = check_recalls(recall or DEFAULT_RECALLS)
    baseline = baseline or []
    inputs = [*baseline, *files]
    if len({p.resolve() for p in inputs}) < len(inputs):
        raise SlcbenchError("the same logits file is given twice")
    _check_outputs_before_work({"--json": json_path, "--csv": csv_path}, inputs, force)

    results = []
    for path in inputs:
        result = evaluate_file(
            path, logits_key=logits_key, labels_key=labels_key, recalls=recalls, auprc=auprc, interpolated=interpolated
        )
        for warning in result.warnings:
            typer.echo(f"slcbench: warning: {path}: {warning}", err=True)
        results.append(result)

    baseline_names = [str(p) for p in baseline]
    Console().print(evaluation_table(results, baseline_names=baseline_names))
    if json_path is not None:
        write_json_atomic(json_path, results_payload(results, baseline_names=baseline_names), overwrite=force)
    if csv_path is not None:
        write_text_atomic(csv_path, per_class_frame(results).to_csv(index=False), overwrite=force)


# ---- train (issue 4) -------------------------------------------------------------------------

# ---- compare and env (issue 5) ---------------------------------------------------------------


def main() -> None:
    """Console-script entry point."""
    app()
