"""The ``slcbench speed`` command: parse the options, run the sweep, print and write the results."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from slcbench.console import TaskProgress, print_table, print_written, report_console, warn
from slcbench.device import DeviceChoice
from slcbench.options import (
    EXIT_INTERRUPTED,
    DeviceOption,
    OutputDirOption,
    SeedOption,
    WideOption,
    fail,
    friendly_errors,
)
from slcbench.speed.config import Precision
from slcbench.speed.protocol import CPU_QUICK_PROTOCOL as CPU
from slcbench.speed.protocol import PAPER_PROTOCOL as PAPER

ARCH_HELP = (
    "Architectures, comma-separated: alexnet, vgg16, inception_v3, resnet50, resnet101, 'all' (those five), "
    "any torchvision classification model, timm:NAME, or python:MODULE:CALLABLE (a model of your own)."
)
CLASSES_HELP = (
    "Class counts (top-layer units), comma-separated: integers or powers like 2^18.5 (floored: 370727); "
    "'all' = the paper's 1,2^10,2^14,2^16,2^18,2^18.5. k=1 is always measured."
)
WARMUP_HELP = (
    f"Untimed warm-up calls per row, at least, after its first call (default: {PAPER.warmup} on CUDA, "
    f"with at least {PAPER.min_warmup_s} s and, under graph timing, until the time per call is steady "
    f"within {PAPER.settle_pct}% (giving up after {PAPER.max_warmup_s:g} s); {CPU.warmup} on CPU)."
)
BATCHES_HELP = (
    "Timed samples per side: of the k=1 row and of each head alone; each other row is timed against k=1 in "
    "interleaved A-B-B-A blocks, max(batches/2, 6) of them, and its speedup is the median block ratio with a "
    f"95% interval (default: {PAPER.batches} on CUDA (paper), {CPU.batches} on CPU)."
)
CI_TARGET_HELP = (
    "Adaptive sampling: add A-B-B-A blocks until the speedup's 95% interval is within this many percent of "
    f"the estimate, or --row-budget runs out; 0 = a fixed number of blocks (default: {CPU.ci_target_pct:g} on "
    "CPU, 0 on CUDA)."
)
ROW_BUDGET_HELP = (
    f"Adaptive sampling: seconds of timing per row at most (default: {CPU.row_budget_s:g}); a row that runs out "
    "is marked not converged."
)
THREADS_HELP = (
    f"CPU threads for torch (default: {CPU.threads} on the CPU, where a second thread waits at every parallel region "
    "for a core another process may hold; torch's choice on CUDA)."
)
QUERY_HELP = (
    "Also time, at each k > 1, the full k-class model answering one queried class per example: 'query' (SLC: one "
    "weight row, one dot product), 'full-gather' (all k logits, then the queried one) and 'adaptive-softmax' "
    "(torch's AdaptiveLogSoftmaxWithLoss: the queried class's log-probability from its head and its cluster)."
)
PAD_HEAD_HELP = (
    "Also time, at each k > 1 that is not a multiple of N, the head with its output rows padded to one (the logits "
    "sliced back to k): a row with head 'padded' beside the unpadded one."
)
ENERGY_HELP = (
    "CUDA with NVML: also read the GPU's energy counter over ~1.3 s of back-to-back batches per row "
    "(energy per batch, mean power, and E(k)/E(1) beside the speedup); adds that time to every row."
)
EXECUTOR_HELP = (
    "Where each configuration (an architecture with all its rows) is measured: inline (this process), process "
    "(a fresh process each; one per GPU at once), ray (Ray tasks, a fresh worker each), slurm (a submitit job "
    "array); ray and slurm need pip install 'slcbench\\[cluster]'. Default: process on CUDA, inline on the CPU."
)
PARALLEL_HELP = (
    "Configurations measured at once, at most (default: process: one per GPU, 1 on the CPU; ray: every GPU "
    "task at once, 1 on the CPU; slurm: no cap, the array's concurrency limit)."
)
RESUME_HELP = (
    "Continue FILE, an interrupted (Ctrl-C leaves one) or partly failed sweep of the same settings: measure only "
    "the configurations it lacks or holds as failed, and write a new merged file."
)
MIN_SAMPLE_HELP = (
    "Graph timing: unroll enough batches into the CUDA graph that one timed sample lasts at least "
    "this long (up to 1000 batches); times are still per batch, the spread is that of block means; "
    f"0 = one batch per sample (default: {PAPER.min_sample_ms:g})."
)


def speed(
    arch: Annotated[str, typer.Option(help=ARCH_HELP)] = "resnet50",
    classes: Annotated[str, typer.Option(help=CLASSES_HELP)] = "all",
    device: DeviceOption = DeviceChoice.auto,
    batch_size: Annotated[
        int | None,
        typer.Option(
            help=f"Examples per batch (default: {PAPER.batch_size} on CUDA (paper), {CPU.batch_size} on CPU)."
        ),
    ] = None,
    batches: Annotated[int | None, typer.Option(help=BATCHES_HELP)] = None,
    ci_target: Annotated[float | None, typer.Option("--ci-target", help=CI_TARGET_HELP)] = None,
    row_budget: Annotated[float | None, typer.Option("--row-budget", help=ROW_BUDGET_HELP)] = None,
    threads: Annotated[int | None, typer.Option("--threads", help=THREADS_HELP)] = None,
    warmup: Annotated[int | None, typer.Option(help=WARMUP_HELP)] = None,
    min_sample_ms: Annotated[float | None, typer.Option("--min-sample-ms", help=MIN_SAMPLE_HELP)] = None,
    precision: Annotated[
        Precision,
        typer.Option(
            help="fp32 = strict float32, TF32 off (the paper's); tf32; bf16/fp16 = model and input cast.",
            case_sensitive=False,
        ),
    ] = Precision.fp32,
    channels_last: Annotated[
        bool, typer.Option("--channels-last", help="Use channels-last memory format for model and input.")
    ] = False,
    eager: Annotated[
        bool,
        typer.Option(
            "--eager", help="Time Python-launched forwards (includes launch overhead) instead of CUDA-graph replay."
        ),
    ] = False,
    compile_model: Annotated[
        bool,
        typer.Option(
            "--compile",
            help="torch.compile the trunk first (the head is one "
            "GEMM); compile time is reported as "
            "trunk_first_call_ms, not timed.",
        ),
    ] = False,
    query: Annotated[bool, typer.Option("--query", help=QUERY_HELP)] = False,
    pad_head: Annotated[int | None, typer.Option("--pad-head", metavar="N", help=PAD_HEAD_HELP)] = None,
    energy: Annotated[bool, typer.Option("--energy", help=ENERGY_HELP)] = False,
    cudnn_benchmark: Annotated[
        bool,
        typer.Option(
            "--cudnn-benchmark/--no-cudnn-benchmark",
            help="Let cuDNN autotune convolution algorithms (fastest; the choice can differ between runs).",
        ),
    ] = True,
    output: OutputDirOption = Path("runs"),
    plot: Annotated[
        bool, typer.Option("--plot", help="Also write a PNG of time per example vs classes (the paper's Fig. 1).")
    ] = False,
    seed: SeedOption = 0,
    executor: Annotated[str | None, typer.Option("--executor", help=EXECUTOR_HELP)] = None,
    parallel: Annotated[int | None, typer.Option("--parallel", help=PARALLEL_HELP)] = None,
    ray_address: Annotated[
        str | None,
        typer.Option(
            "--ray-address",
            help="--executor ray: a running cluster (ray://HEAD:10001, or auto); default: RAY_ADDRESS, else a local "
            "cluster started for the run.",
        ),
    ] = None,
    partition: Annotated[
        str | None, typer.Option("--partition", help="--executor slurm: the partition (default: the cluster's).")
    ] = None,
    gpus_per_task: Annotated[
        int | None,
        typer.Option("--gpus-per-task", help="--executor slurm: GPUs per array task (default: 1 on CUDA, 0 on CPU)."),
    ] = None,
    time_limit: Annotated[
        int | None,
        typer.Option("--time-limit", help="--executor slurm: minutes per array task (default: 60)."),
    ] = None,
    resume: Annotated[Path | None, typer.Option("--resume", metavar="FILE", help=RESUME_HELP)] = None,
    wide: WideOption = False,
) -> None:
    """Forward time with a top layer of 1 (SLC) or k units: the paper's Table III on this machine."""
    from slcbench.speed.config import ExecutorSettings, SpeedConfig, SpeedOutputs, SweepResume

    outputs = SpeedOutputs(folder=output, plot=plot)  # before torch is imported: refusals are fast
    placement = ExecutorSettings.from_options(
        executor=executor,
        device=device,
        output=output,
        parallel=parallel,
        ray_address=ray_address,
        partition=partition,
        gpus_per_task=gpus_per_task,
        time_limit_min=time_limit,
    )
    config = SpeedConfig.from_options(
        arch=arch,
        classes=classes,
        device=device,
        batch_size=batch_size,
        batches=batches,
        warmup=warmup,
        min_sample_ms=min_sample_ms,
        ci_target_pct=ci_target,
        row_budget_s=row_budget,
        threads=threads,
        precision=precision,
        eager=eager,
        channels_last=channels_last,
        compile=compile_model,
        query=query,
        cudnn_benchmark=cudnn_benchmark,
        seed=seed,
        pad_head=pad_head,
        energy=energy,
        device_here=placement.device_here,
    )
    resumed = SweepResume.read(resume, config) if resume is not None else None
    from slcbench.speed.run import SweepInterrupted, run_speed  # imports torch

    for note in config.notes():
        warn(note)
    console = report_console()
    command = " ".join(["slcbench", *sys.argv[1:]])
    try:
        with TaskProgress(console) as progress:
            run = run_speed(
                config, command=command, progress=progress, executor=placement.executor(config), resume=resumed
            )
    except SweepInterrupted as stop:
        raise fail(stop.saved(outputs), code=EXIT_INTERRUPTED) from None
    print_table(console, run.table(wide=wide), wide=wide)
    print_written(console, run.write(outputs))
    for line in run.notes():
        console.print(f"[yellow]{line}[/]")


speed_command = friendly_errors(speed)
