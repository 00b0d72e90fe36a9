"""The ``slcbench`` command line: a thin typer layer over the library's pure functions.

Every command turns SlcbenchError (bad input, impossible request) into one line on stderr and exit
code 2; it never shows a traceback for a user's mistake. Options that several commands share are
declared once below as ``Annotated`` types.
"""

from __future__ import annotations

import functools
import io
import sys
from dataclasses import replace
from enum import Enum
from pathlib import Path
from typing import Annotated, Callable, Optional, TypeVar

import typer
from rich.console import Console

# Only torch-free modules at the top: `--help`, `evaluate`, `compare` must not pay for importing torch.
# Commands that need torch import their modules when they run.
from slcbench.choices import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_MARGIN,
    DEFAULT_NCE_EXACT_MAX_K,
    DEFAULT_NCE_NOISE_SAMPLES,
    DEFAULT_SELF_NORM_ALPHA,
    DIGITS_STEPS,
    LEARNING_RATES,
    LOSS_NAMES,
    PAPER_STEPS,
    DatasetName,
)
from slcbench.compare import Basis
from slcbench.errors import SlcbenchError
from slcbench.evaluation import DEFAULT_RECALLS, check_recalls, evaluate_file, per_class_frame, results_payload
from slcbench.io import output_exists, write_json_atomic, write_text_atomic
from slcbench.metrics import AuprcMethod
from slcbench.paper import CPU_QUICK_PROTOCOL, PAPER_PROTOCOL
from slcbench.reporting import evaluation_table

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


def _print_version(value: bool) -> None:
    if value:
        from slcbench import __version__

        typer.echo(f"slcbench {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True, help="Show the version and exit.")] = False,
) -> None:
    """Benchmarks for Single Logit Classification (SLC): speed, SLC metrics and PoLS losses."""


def report_console() -> Console:
    """A rich console; piped or redirected output (CI logs, files) gets 160 columns, not rich's 80-column guess."""
    return Console(width=None if sys.stdout.isatty() else 160)


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


class PrecisionChoice(str, Enum):
    fp32 = "fp32"
    tf32 = "tf32"
    bf16 = "bf16"
    fp16 = "fp16"


def resolve_device(choice: DeviceChoice):
    """auto = CUDA when present; an explicit cuda without a GPU is an error, not a silent fallback."""
    import torch

    if choice is DeviceChoice.auto:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice is DeviceChoice.cuda and not torch.cuda.is_available():
        raise SlcbenchError("--device cuda was requested but no CUDA device is available")
    return torch.device(choice.value)


def _positive(name: str, value: Optional[int], *, allow_zero: bool = False) -> None:
    if value is not None and (value < 0 or (value == 0 and not allow_zero)):
        raise SlcbenchError(f"{name} must be {'non-negative' if allow_zero else 'positive'}, got {value}")


@app.command()
@friendly_errors
def speed(
    arch: Annotated[str, typer.Option(help="Architectures, comma-separated: alexnet, vgg16, inception_v3, resnet50, resnet101, 'all' (those five), any torchvision classification model, or timm:NAME.")] = "resnet50",
    classes: Annotated[str, typer.Option(help="Class counts (top-layer units), comma-separated: integers or powers like 2^18.5 (floored: 370727); 'all' = the paper's 1,2^10,2^14,2^16,2^18,2^18.5. k=1 is always measured.")] = "all",
    device: DeviceOption = DeviceChoice.auto,
    batch_size: Annotated[Optional[int], typer.Option(help=f"Examples per batch (default: {PAPER_PROTOCOL.batch_size} on CUDA (paper), {CPU_QUICK_PROTOCOL.batch_size} on CPU).")] = None,
    batches: Annotated[Optional[int], typer.Option(help=f"Timed samples per row, each one batch or, under graph timing, a block of batches lasting --min-sample-ms (default: {PAPER_PROTOCOL.batches} on CUDA (paper), {CPU_QUICK_PROTOCOL.batches} on CPU).")] = None,
    warmup: Annotated[Optional[int], typer.Option(help=f"Untimed warm-up calls per row, at least, after its first call (default: {PAPER_PROTOCOL.warmup} on CUDA, with at least {PAPER_PROTOCOL.min_warmup_s} s and, under graph timing, until the time per call is steady within {PAPER_PROTOCOL.settle_pct}% (giving up after {PAPER_PROTOCOL.max_warmup_s:g} s); {CPU_QUICK_PROTOCOL.warmup} on CPU).")] = None,
    min_sample_ms: Annotated[Optional[float], typer.Option("--min-sample-ms", help=f"Graph timing: unroll enough batches into the CUDA graph that one timed sample lasts at least this long (up to 1000 batches); times are still per batch, the spread is that of block means; 0 = one batch per sample (default: {PAPER_PROTOCOL.min_sample_ms:g}).")] = None,
    precision: Annotated[PrecisionChoice, typer.Option(help="fp32 = strict float32, TF32 off (the paper's); tf32; bf16/fp16 = model and input cast.", case_sensitive=False)] = PrecisionChoice.fp32,
    channels_last: Annotated[bool, typer.Option("--channels-last", help="Use channels-last memory format for model and input.")] = False,
    eager: Annotated[bool, typer.Option("--eager", help="Time Python-launched forwards (includes launch overhead) instead of CUDA-graph replay.")] = False,
    compile_model: Annotated[bool, typer.Option("--compile", help="torch.compile the trunk first (the head is one GEMM); compile time is reported as trunk_first_call_ms, not timed.")] = False,
    query: Annotated[bool, typer.Option("--query", help="Also time the full k-class model answering one queried class per example (one weight row, one dot product).")] = False,
    cudnn_benchmark: Annotated[bool, typer.Option("--cudnn-benchmark/--no-cudnn-benchmark", help="Let cuDNN autotune convolution algorithms (fastest; the choice can differ between runs).")] = True,
    output: OutputDirOption = Path("results"),
    plot: Annotated[bool, typer.Option("--plot", help="Also write a PNG of time per example vs classes (the paper's Fig. 1).")] = False,
    seed: SeedOption = 0,
) -> None:
    """Forward time with a top layer of 1 (SLC) or k units: the paper's Table III on this machine."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from slcbench.envinfo import collect_environment
    from slcbench.io import json_bytes, timestamp, write_new_results
    from slcbench.models import resolve_arch_list
    from slcbench.paper import format_class_count, parse_class_spec
    from slcbench.reporting import plot_speed, require_matplotlib, sampling_summary, speed_table, spread_notes
    from slcbench.speed import Precision, SpeedConfig, default_protocol, results_document, results_frame, run_speed

    for name, value in (("--batch-size", batch_size), ("--batches", batches)):
        _positive(name, value)
    _positive("--warmup", warmup, allow_zero=True)
    if plot:
        require_matplotlib()
    target = resolve_device(device)
    base = default_protocol(target)
    if min_sample_ms is not None and not 0 <= min_sample_ms <= 1000:
        raise SlcbenchError(f"--min-sample-ms must be between 0 and 1000, got {min_sample_ms:g}")
    custom = any(v is not None for v in (batch_size, batches, warmup, min_sample_ms))
    protocol = replace(
        base,
        name=f"{base.name}+custom" if custom else base.name,
        batch_size=batch_size or base.batch_size,
        batches=batches or base.batches,
        warmup=base.warmup if warmup is None else warmup,
        min_sample_ms=base.min_sample_ms if min_sample_ms is None else min_sample_ms,
    )
    config = SpeedConfig(
        archs=resolve_arch_list(arch), classes=parse_class_spec(classes), device=target, protocol=protocol,
        precision=Precision(precision.value), eager=eager, channels_last=channels_last, compile=compile_model,
        query=query, cudnn_benchmark=cudnn_benchmark, seed=seed,
    )
    if eager and target.type != "cuda":
        typer.echo("note: --eager only changes CUDA timing; CPU calls are always timed as launched", err=True)
    if min_sample_ms and config.timing != "graph":
        typer.echo("note: --min-sample-ms only changes CUDA graph timing; here each sample is one batch", err=True)
    console = report_console()
    environment = collect_environment(target)
    label = "paper protocol" if protocol.name == "paper" else f"{protocol.name} protocol — NOT the paper's (batch 32, 100 batches on a GPU)"
    console.print(
        f"[bold]slcbench speed[/] on {environment['device_name']} · {config.precision.value} · "
        f"{config.timing} timing · batch {protocol.batch_size} · {sampling_summary(config)} · {label}"
    )
    rows = []
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True) as progress:
        task = progress.add_task("measuring", total=config.rows_total)
        for row in run_speed(config):
            rows.append(row)
            progress.update(task, advance=1, description=f"{row.arch} k={format_class_count(row.classes)} {row.head}")
    console.print(speed_table(rows, title=f"Forward time, {config.timing} timing, {config.precision.value}"))

    command = " ".join(["slcbench", *sys.argv[1:]]) if sys.argv else "slcbench speed"
    document = results_document(config, rows, environment=environment, created=timestamp(), command=command)
    stem = write_new_results(output, "speed", (".json", ".csv", ".png"), json_bytes(document))
    written = [
        stem.with_name(stem.name + ".json"),
        write_text_atomic(stem.with_name(stem.name + ".csv"), results_frame(rows).to_csv(index=False)),
    ]
    if plot:
        png = stem.with_name(stem.name + ".png")
        plot_speed(rows, png)
        written.append(png)
    console.print("wrote " + ", ".join(str(p) for p in written))
    failed = [r for r in rows if r.status != "ok"]
    if failed:
        console.print(f"[yellow]{len(failed)} row(s) did not complete (OOM or failure): see the 'error' column[/]")
    for line in spread_notes(rows, protocol.max_warmup_s):
        console.print(f"[yellow]{line}[/]")


# ---- evaluate (issue 3) ----------------------------------------------------------------------


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
            raise output_exists(path)


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
        typer.Option("--recall", help="Recall level r in (0, 1] for Precision@r; repeat for several. \\[default: 0.9, 0.99]", show_default=False),
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
    strict: Annotated[bool, typer.Option("--strict", help="Make a class without positive examples an error (exit 2) instead of a warning.")] = False,
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
        if strict and result.classes_skipped:
            raise SlcbenchError(
                f"{path}: {result.classes_skipped} of {result.n_classes} classes have no positive example (--strict)"
            )
        for warning in result.warnings:
            typer.echo(f"slcbench: warning: {path}: {warning}", err=True)
        results.append(result)

    baseline_names = [str(p) for p in baseline]
    report_console().print(evaluation_table(results, baseline_names=baseline_names))
    if json_path is not None:
        write_json_atomic(json_path, results_payload(results, baseline_names=baseline_names), overwrite=force)
    if csv_path is not None:
        write_text_atomic(csv_path, per_class_frame(results).to_csv(index=False), overwrite=force)


# ---- train (issue 4) -------------------------------------------------------------------------


def _train_outputs(out: Optional[Path], names: list[str], dataset: str) -> tuple[Path, dict[str, Path], list[Path]]:
    """(folder, npz path per loss, table files): one loss writes the file ``--out``, several a folder."""
    if len(names) == 1:
        path = out or Path("runs") / f"{names[0]}-{dataset}.npz"
        if path.is_dir():
            raise SlcbenchError(f"--out {path} is a folder; for one loss give the .npz file to write")
        if path.parent.exists() and not path.parent.is_dir():
            raise SlcbenchError(f"--out {path}: {path.parent} is a file, not a folder")
        return path.parent, {names[0]: path}, []
    folder = out or Path("runs") / f"train-{dataset}"
    if folder.exists() and not folder.is_dir():
        raise SlcbenchError(f"--out {folder} is a file; for several losses give a folder")
    tables = [folder / name for name in ("table.txt", "table.csv", "summary.json")]
    return folder, {name: folder / f"{name}.npz" for name in names}, tables


def _command_line(prefix: str, params: dict) -> str:
    """The command with every option spelled out (defaults included), to repeat a run exactly."""
    parts = [prefix]
    for name, value in params.items():
        if value is None or value is False:
            continue
        parts.append(f"--{name.replace('_', '-')}")
        if value is not True:
            parts.append(str(value.value if isinstance(value, Enum) else value))
    return " ".join(parts)


@app.command()
@friendly_errors
def train(
    ctx: typer.Context,
    loss: Annotated[str, typer.Option(help="Loss to train: " + ", ".join(LOSS_NAMES) + "; a comma-separated list; or 'all' (the paper's seven, in Table I order).")] = "all",
    dataset: Annotated[DatasetName, typer.Option(help="digits = scikit-learn's bundled 8x8 digits (offline); the others are read from --data-dir.", case_sensitive=False)] = DatasetName.digits,
    data_dir: Annotated[Optional[Path], typer.Option("--data-dir", help="Folder with the data set in torchvision's layout (MNIST/raw/..., cifar-10-batches-py/, cifar-100-python/, train_32x32.mat). Never downloaded.")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="One loss: the .npz to write \\[default: runs/LOSS-DATASET.npz]. Several: a folder for LOSS.npz files and the table \\[default: runs/train-DATASET].", show_default=False)] = None,
    steps: Annotated[Optional[int], typer.Option(help=f"Optimizer steps per run \\[default: {DIGITS_STEPS} on digits, the paper's {PAPER_STEPS} otherwise].", show_default=False)] = None,
    batch_size: Annotated[int, typer.Option(help="Examples per batch (the batch losses use the batch).")] = DEFAULT_BATCH_SIZE,
    lr: Annotated[Optional[float], typer.Option("--lr", help="Use this learning rate instead of choosing from 1, 0.1, 0.01, 0.001 by validation accuracy.", show_default=False)] = None,
    margin: Annotated[float, typer.Option(help="γ of max-margin and batch max-margin.")] = DEFAULT_MARGIN,
    alpha: Annotated[float, typer.Option(help="α of self-normalization.")] = DEFAULT_SELF_NORM_ALPHA,
    nce_samples: Annotated[int, typer.Option("--nce-samples", help="t of NCE: weight of the noise term and, when sampling, noise classes per example.")] = DEFAULT_NCE_NOISE_SAMPLES,
    nce_exact_max_k: Annotated[int, typer.Option("--nce-exact-max-k", help="NCE sums its expectation exactly up to this many classes and samples t noise classes above.")] = DEFAULT_NCE_EXACT_MAX_K,
    threads: Annotated[Optional[int], typer.Option(help="CPU threads for torch \\[default: torch's choice]; 1 is often fastest for the small MLP.", show_default=False)] = None,
    device: DeviceOption = DeviceChoice.auto,
    seed: SeedOption = 0,
    force: ForceOption = False,
) -> None:
    """Train the paper's model with each loss and save its test logits for `slcbench evaluate`.

    With several losses, print the paper's Table I (PoLS-aligned losses below the rule).
    """
    import pandas as pd
    import torch
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from slcbench.data import load_dataset
    from slcbench.envinfo import collect_environment
    from slcbench.losses import LossSettings
    from slcbench.training import (
        TrainConfig,
        default_steps,
        evaluate_trained,
        losses_to_train,
        save_npz,
        summary_rows,
        total_steps,
        train_with_lr_search,
    )

    names = losses_to_train([part.strip() for part in loss.split(",") if part.strip()])
    if not names:
        raise SlcbenchError("--loss is empty; choose one of: " + ", ".join(LOSS_NAMES) + ", all")
    for option, value in (("--steps", steps), ("--batch-size", batch_size), ("--nce-samples", nce_samples), ("--threads", threads)):
        _positive(option, value)
    settings = LossSettings(margin=margin, self_norm_alpha=alpha, nce_noise_samples=nce_samples, nce_exact_max_k=nce_exact_max_k)
    configs = [
        TrainConfig(loss=name, steps=steps or default_steps(dataset), batch_size=batch_size,
                    learning_rates=(lr,) if lr is not None else LEARNING_RATES, seed=seed, loss_settings=settings)
        for name in names
    ]
    # Refuse existing outputs before minutes of training, not after.
    folder, npz_paths, table_paths = _train_outputs(out, names, dataset.value)
    for path in [*npz_paths.values(), *table_paths]:
        if path.exists() and not force:
            raise output_exists(path)
    data = load_dataset(dataset, data_dir)
    target = resolve_device(device)
    if threads is not None:
        torch.set_num_threads(threads)
    folder.mkdir(parents=True, exist_ok=True)

    console = report_console()
    console.print(
        f"[bold]slcbench train[/] {dataset.value}: {len(data.train)} train / {len(data.validation)} validation / "
        f"{len(data.test)} test, {data.num_classes} classes · {configs[0].steps} steps × batch {batch_size} · "
        f"learning rates {', '.join(f'{r:g}' for r in configs[0].learning_rates)} · {target}"
    )
    results = []
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True) as progress:
        for config in configs:
            task = progress.add_task(config.loss, total=total_steps(config))
            result = train_with_lr_search(data, config, target, on_step=lambda: progress.advance(task))
            progress.remove_task(task)
            save_npz(result, npz_paths[config.loss], overwrite=force)
            console.print(
                f"{config.loss}: learning rate {result.learning_rate:g}, validation accuracy "
                f"{result.validation_accuracy:.3f}, test accuracy {result.test_accuracy:.3f} → {npz_paths[config.loss]}"
            )
            results.append(result)
    if len(results) < 2:
        return
    evaluations, baseline = evaluate_trained(results)
    table = evaluation_table(evaluations, baseline_names=baseline)
    console.print(table)
    recorder = Console(record=True, width=200, file=io.StringIO())  # plain-text copy for the file
    recorder.print(table)
    command = _command_line("slcbench train", ctx.params)
    write_text_atomic(table_paths[0], f"$ {command}\n\n{recorder.export_text()}", overwrite=force)
    write_text_atomic(table_paths[1], pd.DataFrame(summary_rows(results, evaluations)).to_csv(index=False), overwrite=force)
    write_json_atomic(table_paths[2], {
        "kind": "slcbench.train", "schema_version": 1, "command": command,
        "environment": collect_environment(target),
        "training": [r.settings() for r in results],
        "evaluation": results_payload(evaluations, baseline_names=baseline),
    }, overwrite=force)
    console.print("wrote " + ", ".join(str(p) for p in table_paths))


# ---- compare and env (issue 5) ---------------------------------------------------------------


EXIT_REGRESSED = 1


@app.command("compare")
@friendly_errors
def compare_command(
    baseline: Annotated[Path, typer.Argument(help="Results file of the reference run (speed JSON or pytest-benchmark JSON).", show_default=False)],
    new: Annotated[Path, typer.Argument(help="Results file of the run to judge, of the same kind as BASELINE.", show_default=False)],
    max_regression: Annotated[str, typer.Option(
        "--max-regression",
        help="Largest slowdown that still passes, as a percentage with a % sign (10%, 2.5%). "
             "A bare number is rejected as ambiguous.",
    )] = "10%",
    basis: Annotated[Basis, typer.Option(
        "--basis", case_sensitive=False,
        help="ratio: compare each speed row's time relative to its k=1 run in the same file (cancels machine "
             "speed; rows or files without it fall back to time). time: compare median times. "
             "pytest-benchmark files have no reference and always use time.",
    )] = Basis.ratio,
    fail_on_missing: Annotated[bool, typer.Option(
        "--fail-on-missing", help="Also exit 1 when a BASELINE row is missing from NEW."
    )] = False,
) -> None:
    """Compare two results files row by row; exit 1 if a matched row got slower than the threshold.

    Exit codes: 0 no regression; 1 a matched row slower than --max-regression, or a row that ran in BASELINE failed in NEW; 2 unreadable, unknown or mismatched files.
    """
    from slcbench.compare import Verdict, compare_files, parse_max_regression
    from slcbench.reporting import render_comparison

    threshold = parse_max_regression(max_regression)
    comparison = compare_files(baseline, new, threshold, basis)
    for what, differences, consequence in (
        ("environments", comparison.environment_differences, "comparisons across machines are suspect"),
        ("timing settings", comparison.settings_differences, "times and spreads may not be like for like"),
    ):
        if differences:
            typer.echo(f"slcbench: warning: the runs' {what} differ ({'; '.join(differences)}): {consequence}", err=True)
    summary = render_comparison(comparison, report_console())
    missing = comparison.with_verdict(Verdict.missing_in_new)
    failed = bool(comparison.with_verdict(Verdict.regressed)) or (fail_on_missing and bool(missing))
    typer.echo(f"{'FAIL' if failed else 'PASS'}: {summary}")
    if failed:
        raise typer.Exit(EXIT_REGRESSED)


@app.command("env")
@friendly_errors
def env_command(
    device: DeviceOption = DeviceChoice.auto,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Print what a benchmark report needs: device, driver, CUDA, torch/torchvision/timm, CPU, threads."""
    from slcbench.envinfo import collect_environment
    from slcbench.reporting import environment_json, environment_table

    environment = collect_environment(resolve_device(device))
    if as_json:
        typer.echo(environment_json(environment))
    else:
        report_console().print(environment_table(environment))


def main() -> None:
    """Console-script entry point (also ``python -m slcbench``).

    Usage errors (an unknown option, a value outside a choice, a missing argument) get the same
    one-line treatment as SlcbenchError instead of click's multi-line box. They are recognised by
    click's exception interface (``format_message``, ``exit_code``) because typer has moved from
    click's classes to its own vendored copies between the releases we support.
    """
    try:
        code = app(prog_name="slcbench", standalone_mode=False)
    except typer.Abort:
        raise SystemExit(fail("interrupted", code=130).exit_code) from None
    except Exception as exc:
        if not (hasattr(exc, "format_message") and isinstance(getattr(exc, "exit_code", None), int)):
            raise
        message = " ".join(exc.format_message().split())
        if not message:  # no arguments at all: click has printed the help already
            raise SystemExit(exc.exit_code) from None
        ctx = getattr(exc, "ctx", None)
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        raise SystemExit(fail(message + hint, code=exc.exit_code).exit_code) from None
    raise SystemExit(code or 0)
