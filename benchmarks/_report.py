"""The printed table (also pasted into benchmarks/README.md) and benchmarks/results.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["format_table", "update_readme", "write_results"]

_SCALE = {"s": 1.0, "ms": 1e3}


def _time(side: dict[str, Any], unit: str) -> str:
    k = _SCALE[unit]
    return f"{side['median'] * k:.4g} {unit} ({side['min'] * k:.4g}-{side['max'] * k:.4g})"


def _mib(kib: float) -> str:
    return f"{kib / 1024:.0f} MiB"


def _verdict(entry: dict[str, Any]) -> str:
    if "pass" not in entry:
        return "-"
    return "pass" if entry["pass"] else "MISS"


def _line(entry: dict[str, Any]) -> list[str]:
    num = str(entry["number"])
    if "error" in entry:
        return [num, entry["title"], "skipped", "", "", "", entry["error"][:70]]
    target = f"<= {entry['target']}" if entry.get("target") is not None else "-"
    if entry["key"].startswith("rss_"):
        p, t = entry["plait"], entry["torch"]
        plait = f"{_mib(p['peak_kib'])} (+{_mib(p['peak_kib'] - p['base_kib'])})"
        torch = f"{_mib(t['peak_kib'])} (+{_mib(t['peak_kib'] - t['base_kib'])})"
        return [num, entry["title"], plait, torch, f"{entry['ratio']:.2f}", target, _verdict(entry)]
    unit, per = entry["unit"], entry["per"]
    title = entry["title"]
    plait, torch = _time(entry["plait"], unit), _time(entry["torch"], unit)
    if per == "token":
        title += f" [{1 / entry['plait']['median']:.0f} vs {1 / entry['torch']['median']:.0f} tok/s]"
    return [num, f"{title} (per {per})", plait, torch, f"{entry['ratio']:.2f}", target, _verdict(entry)]


def format_table(run: dict[str, Any], markdown: bool = False) -> str:
    """One table per thread count; times are medians (min-max) per unit, ratio = Plait/PyTorch."""
    header = ["#", f"benchmark ({run['threads']} thread{'s' if run['threads'] > 1 else ''})", "Plait", "PyTorch",
              "ratio", "target", "result"]
    lines = [header] + [_line(e) for e in run["rows"]]
    if markdown:
        out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        out += ["| " + " | ".join(cells) + " |" for cells in lines[1:]]
        return "\n".join(out)
    widths = [max(len(row[i]) for row in lines) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in lines)


def write_results(results: dict[str, Any], path: Path, merge: bool = False) -> None:
    """Write the JSON; with ``merge`` (a partial ``--only`` run) replace just the rows measured."""
    if merge and path.exists():
        try:
            old = json.loads(path.read_text())
        except ValueError:
            old = None
        if old is not None:
            by_threads = {run["threads"]: run for run in old.get("runs", [])}
            for run in results["runs"]:
                prev = by_threads.get(run["threads"])
                if prev is None:
                    by_threads[run["threads"]] = run
                    continue
                new_keys = {e["key"] for e in run["rows"]}
                prev["rows"] = [e for e in prev["rows"] if e["key"] not in new_keys] + run["rows"]
                prev["rows"].sort(key=lambda e: (e["number"], e["key"]))
            old["runs"] = [by_threads[t] for t in sorted(by_threads)]
            old["machine"], old["date"], old["commit"] = results["machine"], results["date"], results.get("commit")
            results = old
    path.write_text(json.dumps(results, indent=1, default=float) + "\n")


START, END = "<!-- results:start -->", "<!-- results:end -->"


def update_readme(results: dict[str, Any], path: Path) -> None:
    """Replace the text between the results markers of the README with these tables."""
    text = path.read_text()
    if START not in text or END not in text:
        raise ValueError(f"{path} has no {START} ... {END} section")
    m = results["machine"]
    blas = "; ".join(f"{b.get('internal_api')} {b.get('version', '')} {b.get('architecture', '')}".strip()
                     for b in m["blas"])
    parts = [f"Machine: {m['cpu']}, {m['logical_cores']} cores, {m['platform']}, Python {m['python']}, "
             f"NumPy {m['numpy']}, torch {m['torch']}; threadpools: {blas}. "
             f"Taken {results.get('date', '?')} at commit {results.get('commit', '?')}, "
             f"{results['settings']['repeats']} repeats, {results['settings'].get('clock', 'wall')} clock; "
             f"load average before the run: {m.get('load_average_at_start')}."]
    for run in results["runs"]:
        parts.append(format_table(run, markdown=True))
    head, rest = text.split(START, 1)
    tail = rest.split(END, 1)[1]
    path.write_text(head + START + "\n" + "\n\n".join(parts) + "\n" + END + tail)
