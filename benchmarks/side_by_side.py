"""Train the same recipe in Plait and in PyTorch and compare the curves (the docs' Results page).

    hatch run bench:python benchmarks/side_by_side.py --text ../shared/data/tinyshakespeare.txt
    hatch run bench:python benchmarks/side_by_side.py --tasks mlp-digits --budget 30

For each task both frameworks start from the same weights (Plait's initial weights copied
into the torch twin; the first evaluation must agree), train on the same batches in the
same order with AdamW and a per-step cosine schedule, and are evaluated at the same points
on the same held-out data. The two take turns, one evaluation period each, so that load
from other processes hits both alike; only the training steps are timed. ``--budget`` caps each
framework's training seconds per task (a run stopped by it says so). Writes
``benchmarks/side_by_side.json``, one PNG per task (both frameworks on one plot) and the
Markdown table ``benchmarks/side_by_side.md`` that the Results page includes. Not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import numpy as np  # noqa: E402
from _harness import machine_info, thread_limits  # noqa: E402
from _sbs_tasks import TASKS, Task  # noqa: E402
from _sbs_train import PlaitSide, Run, TorchSide  # noqa: E402

REPO = HERE.parent
DEFAULT_TEXT = REPO.parent / "shared" / "data" / "tinyshakespeare.txt"
FRAMEWORKS = ("plait", "torch")
DEFAULT_TASKS = ["mlp-digits", "lenet5-fashion", "gpt-shakespeare"]  # resnet8-fashion: ~1 s per Plait step on 2 cores


def run_task(task: Task, options: dict[str, Any], budget: float) -> dict[str, Any]:
    from _torch_models import copy_weights

    data = task.data(options)
    plait_model = task.plait_model(data)
    torch_model = task.torch_model(data)
    copy_weights(plait_model, torch_model)  # identical initial weights
    sides = {"plait": PlaitSide(plait_model, task.recipe, data), "torch": TorchSide(torch_model, task.recipe, data)}
    first = {name: side.evaluate()[0] for name, side in sides.items()}
    if not np.isclose(first["plait"], first["torch"], rtol=1e-4):
        raise SystemExit(f"{task.key}: the two models disagree before training ({first}): not the same network")
    out: dict[str, Any] = {"title": task.title, "recipe": task.recipe.__dict__, "metric": task.metric,
                           "parameters": plait_model.num_parameters()}
    runs = {name: Run(side, task.recipe, data, budget) for name, side in sides.items()}
    while not all(run.done for run in runs.values()):
        for run in runs.values():  # taking turns period by period: both meet the same outside load
            if not run.done:
                run.advance()
    for name, run in runs.items():
        out[name] = run.summary()
        last = run.curve[-1]
        acc = "" if last["accuracy"] is None else f", accuracy {last['accuracy']:.4f}"
        print(f"{task.key} {name}: {run.step} steps, {run.seconds:.1f} s training: loss {last['loss']:.4f}{acc}",
              flush=True)
    return out


def best(run: dict[str, Any], metric: str) -> float:
    values = [p[metric] for p in run["curve"]]
    return max(values) if metric == "accuracy" else min(values)


def plot(key: str, result: dict[str, Any], folder: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metric = result["metric"]
    label = "test accuracy" if metric == "accuracy" else "validation loss (nats per character)"
    x_step = "epoch" if result["recipe"]["kind"] == "classifier" else "step"
    fig, (ax_step, ax_time) = plt.subplots(1, 2, figsize=(9.5, 3.6), sharey=True)
    for name, style in zip(FRAMEWORKS, ("o-", "s--")):
        curve = result[name]["curve"][1:] if metric == "accuracy" else result[name]["curve"]
        values = [p[metric] for p in curve]
        ax_step.plot([p[x_step] for p in curve], values, style, ms=4, label=name)
        ax_time.plot([p["seconds"] for p in curve], values, style, ms=4, label=name)
    ax_step.set(xlabel=x_step, ylabel=label)
    ax_time.set(xlabel="training seconds (wall clock)")
    for ax in (ax_step, ax_time):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(result["title"], fontsize=10)
    fig.tight_layout()
    path = folder / f"side_by_side_{key}.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def markdown(results: dict[str, Any], machine: dict[str, Any]) -> str:
    lines = ["| task | framework | steps | training time | s / step | final | best |",
             "|---|---|---|---|---|---|---|"]
    for key, r in results.items():
        fmt = (lambda v: f"{100 * v:.2f}% acc.") if r["metric"] == "accuracy" else (lambda v: f"{v:.3f} nats")
        for name in FRAMEWORKS:
            run = r[name]
            note = " (budget)" if run["stopped_by_budget"] else ""
            lines.append(f"| {key} | {name} | {run['steps']}{note} | {run['train_seconds']:.1f} s | "
                         f"{1000 * run['seconds_per_step']:.1f} ms | {fmt(run['curve'][-1][r['metric']])} | "
                         f"{fmt(best(run, r['metric']))} |")
    lines += ["", f"Machine: {machine['cpu']}, {machine['logical_cores']} logical cores; NumPy {machine['numpy']}, "
              f"PyTorch {machine['torch']}. Threads per framework, training-time budget and the 1-minute load average "
              "before and after each task:", ""]
    for key, r in results.items():
        limit = f", the first {r['train_limit']:,} training images" if r.get("train_limit") else ""
        load = r.get("load_average") or [[None], [None]]
        lines.append(f"- {key}: {r.get('threads')} thread(s), budget {r.get('budget_seconds')} s{limit}; "
                     f"load {load[0][0]} -> {load[1][0]}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", choices=sorted(TASKS), default=DEFAULT_TASKS)
    parser.add_argument("--budget", type=float, default=300.0, help="training seconds per framework and task")
    parser.add_argument("--threads", type=int, default=1, help="BLAS / torch threads for both frameworks")
    parser.add_argument("--text", type=Path, default=DEFAULT_TEXT, help="tinyshakespeare.txt")
    parser.add_argument("--train-limit", type=int, default=None, help="use only this many Fashion-MNIST images")
    parser.add_argument("--json", type=Path, default=HERE / "side_by_side.json")
    parser.add_argument("--table", type=Path, default=HERE / "side_by_side.md")
    parser.add_argument("--figures", type=Path, default=REPO / "docs" / "figures")
    parser.add_argument("--fresh", action="store_true", help="drop the results of tasks not run now from the JSON")
    args = parser.parse_args()

    import torch  # noqa: F401 - loaded before thread_limits so both frameworks get the same count

    options = {"text": args.text, "train_limit": args.train_limit}
    args.figures.mkdir(parents=True, exist_ok=True)
    machine = {**machine_info(), "threads": args.threads}
    results: dict[str, Any] = {}
    if not args.fresh and args.json.is_file():  # keep the other tasks' results (each records its own load)
        results = json.loads(args.json.read_text()).get("results", {})
    with thread_limits(args.threads):
        for key in args.tasks:
            try:
                load_start = [round(v, 2) for v in os.getloadavg()]
                results[key] = run_task(TASKS[key], options, args.budget)
                results[key].update(load_average=[load_start, [round(v, 2) for v in os.getloadavg()]],
                                    budget_seconds=args.budget, threads=args.threads,
                                    train_limit=args.train_limit if TASKS[key].data.__name__ == "_fashion" else None)
            except FileNotFoundError as exc:
                print(f"{key}: skipped: {exc}", flush=True)
                continue
            print(f"wrote {plot(key, results[key], args.figures)}", flush=True)
    machine["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
    payload = {"machine": machine, "results": results}
    for path, text in ((args.json, json.dumps(payload, indent=1) + "\n"), (args.table, markdown(results, machine))):
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, path)  # a reader never sees half a file
    print(markdown(results, machine))


if __name__ == "__main__":
    main()
