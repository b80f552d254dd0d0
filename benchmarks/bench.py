"""The benchmark suite: core computations against plain references, and whole notebooks.

Usage::

    python benchmarks/bench.py [--device auto] [--parts kernels notebooks]
                               [--profiles smoke default] [--out _build/bench]

``kernels`` times each case of ``benchmarks/kernels.py`` (the package's batched step and a
plain reference doing the same work by a loop over replicas and autograd, on the same device
in the same run) and the du2019 step against its two matrix products. ``notebooks`` runs
every notebook of the book at each profile (``paper`` is only run on a GPU) in a fresh
process and records its wall time and peak memory (the notebook process's resident set on
the CPU, the largest allocation on a GPU). The report goes to ``<out>/report.json`` and
``<out>/report.md``, with the date, the device and the versions. Only ratios measured in one
run mean much on a shared machine; the wall times say what a reader waits.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.utils.benchmark as benchmark

sys.path.insert(0, str(Path(__file__).resolve().parent))

import kernels  # noqa: E402  (benchmarks/kernels.py, next to this file)

import twolayer  # noqa: E402
from twolayer.companion.book import toc_notebooks  # noqa: E402
from twolayer.companion.paths import repo_root  # noqa: E402
from twolayer.devices import describe_device, resolve_device  # noqa: E402

PARTS = ("kernels", "notebooks")


def seconds(fn, min_run_time: float) -> float:
    """Median time of one call, repeated until stable (CUDA is synchronized)."""
    timer = benchmark.Timer(stmt="fn()", globals={"fn": fn})
    return float(timer.blocked_autorange(min_run_time=min_run_time).median)


def run_kernels(device: torch.device, gram_n: int, min_time: float) -> list[dict]:
    """Time every case and its reference; the du2019 step also against its matmuls."""
    rows = []
    for build in kernels.all_cases(device, gram_n):
        case = build()
        print(f"  {case.name}: {case.description}", flush=True)
        row: dict[str, object] = {
            "name": case.name,
            "description": case.description,
            **case.details,
        }
        row["fast_s"] = seconds(case.fast, min_time)
        if case.reference is not None:
            row["reference"] = case.reference_label
            row["reference_s"] = seconds(case.reference, min_time)
            row["speedup"] = row["reference_s"] / row["fast_s"]
        if case.matmul is not None and case.flops is not None:
            row["matmul_s"] = seconds(case.matmul, min_time)
            row["step_flops_per_s"] = case.flops / row["fast_s"]
            row["matmul_flops_per_s"] = case.flops / row["matmul_s"]
            row["fraction_of_matmul"] = row["matmul_s"] / row["fast_s"]
        rows.append(row)
        del case
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return rows


def run_notebook(name: str, profile: str, device: str, scratch: Path) -> dict:
    """Run one notebook in a fresh process; its wall time and peak memory from its run."""
    start = time.perf_counter()
    command = [
        sys.executable,
        "-m",
        "twolayer.companion.run",
        name,
        "--profile",
        profile,
        "--out",
        str(scratch),
        "-p",
        "device",
        repr(device),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    row: dict[str, object] = {
        "notebook": name,
        "profile": profile,
        "wall_s": time.perf_counter() - start,
        "status": "succeeded" if done.returncode == 0 else "failed",
    }
    resources = next(scratch.glob(f"*/{name}/resources.json"), None)
    if resources is not None:
        row.update(json.loads(resources.read_text()))
    if done.returncode:
        row["error"] = (done.stderr or done.stdout).strip().splitlines()[-1:]
    return row


def run_notebooks(profiles: list[str], device: torch.device) -> list[dict]:
    names = toc_notebooks(repo_root() / "book" / "_toc.yml")
    rows = []
    for profile in profiles:
        if profile == "paper" and device.type != "cuda":
            print("  paper profile skipped: it needs a GPU")
            continue
        for name in names:
            with tempfile.TemporaryDirectory() as scratch:
                row = run_notebook(name, profile, str(device), Path(scratch))
            print(f"  {name} [{profile}]: {row['wall_s']:.1f} s, {row['status']}", flush=True)
            rows.append(row)
    return rows


def environment(device: torch.device) -> dict[str, str]:
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "device": describe_device(device),
        "torch_threads": str(torch.get_num_threads()),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "twolayer": twolayer.__version__,
        "machine": f"{platform.machine()}, {platform.processor() or 'unknown cpu'}",
    }


def _ms(seconds_: object) -> str:
    return f"{1e3 * float(seconds_):.2f}" if seconds_ is not None else ""


def markdown(report: dict) -> str:
    env = report["environment"]
    lines = [
        f"# Benchmarks, {env['date']}",
        "",
        ", ".join(f"{k}: {v}" for k, v in env.items() if k != "date"),
        "",
    ]
    if report.get("kernels"):
        lines += [
            "## Core computations",
            "",
            "| case | batched (ms) | reference (ms) | speed-up | reference |",
            "| --- | --- | --- | --- | --- |",
        ]
        for row in report["kernels"]:
            speedup = f"{row['speedup']:.1f}x" if "speedup" in row else ""
            cells = [
                row["description"],
                _ms(row["fast_s"]),
                _ms(row.get("reference_s")),
                speedup,
                row.get("reference", ""),
            ]
            lines.append("| " + " | ".join(cells) + " |")
        for row in report["kernels"]:
            if "fraction_of_matmul" in row:
                step, products = row["step_flops_per_s"] / 1e9, row["matmul_flops_per_s"] / 1e9
                share = 100 * row["fraction_of_matmul"]
                lines += [
                    "",
                    f"{row['name']}: {step:.1f} GFLOP/s in the step, {products:.1f} "
                    "GFLOP/s in its two matrix products alone: the step runs at "
                    f"{share:.0f} % of their throughput.",
                ]
    if report.get("notebooks"):
        lines += [
            "",
            "## Notebooks",
            "",
            "| notebook | profile | wall time (s) | peak memory (GiB) | status |",
            "| --- | --- | --- | --- | --- |",
        ]
        for row in report["notebooks"]:
            peak = row.get("peak_gpu_bytes") or row.get("peak_rss_bytes")
            where = " (GPU)" if row.get("peak_gpu_bytes") else ""
            memory = f"{peak / 2**30:.2f}{where}" if peak else ""
            lines.append(
                f"| {row['notebook']} | {row['profile']} | {row['wall_s']:.1f} | "
                f"{memory} | {row['status']} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:<index>")
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument(
        "--profiles",
        nargs="+",
        choices=("smoke", "default", "paper"),
        default=["smoke", "default", "paper"],
    )
    parser.add_argument(
        "--gram-n",
        type=int,
        default=None,
        help="points of the H∞ cases (default: 10000 on a GPU, 4000 on a CPU)",
    )
    parser.add_argument("--min-time", type=float, default=1.0, help="seconds per measurement")
    parser.add_argument("--out", default=str(repo_root() / "_build" / "bench"))
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    gram_n = args.gram_n or (10_000 if device.type == "cuda" else 4000)
    report: dict[str, object] = {"environment": environment(device)}
    print(f"device: {report['environment']['device']}")
    if "kernels" in args.parts:
        print("core computations")
        report["kernels"] = run_kernels(device, gram_n, args.min_time)
    if "notebooks" in args.parts:
        print("notebooks")
        report["notebooks"] = run_notebooks(args.profiles, device)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "report.md").write_text(markdown(report))
    print(f"report: {out / 'report.md'} and {out / 'report.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
