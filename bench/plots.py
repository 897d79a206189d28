"""PNG plots of a bench report (matplotlib, headless), shown in the README."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def throughput(report: dict[str, Any], folder: Path) -> list[Path]:
    figures = report.get("throughput") or {}
    if not figures:
        return []
    fig, (push_axes, pull_axes) = plt.subplots(1, 2, figsize=(11, 4.2))
    for backend, data in figures.items():
        batches = [row["batch_events"] for row in data["push"]]
        push_axes.plot(batches, [row["events_per_second"] for row in data["push"]], marker="o", label=backend)
        sizes = [row["events_per_response"] for row in data["pull"]]
        pull_axes.plot(sizes, [row["events_per_second"] for row in data["pull"]], marker="o", label=backend)
    push_axes.set(
        xscale="log",
        yscale="log",
        xlabel="events per push",
        ylabel="events/s (median)",
        title="Push throughput through stratasync dev",
    )
    pull_axes.set(
        xscale="log",
        yscale="log",
        xlabel="events per pull response (chunks of <= 100)",
        ylabel="events/s (median)",
        title="Pull throughput through stratasync dev",
    )
    for axes in (push_axes, pull_axes):
        axes.grid(True, which="both", alpha=0.3)
        axes.legend()
    fig.tight_layout()
    path = folder / "throughput.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]


def cold_import(report: dict[str, Any], folder: Path) -> list[Path]:
    data = report.get("cold_import")
    if not data:
        return []
    names = list(data["rows"])
    values = [data["rows"][name]["import_ms"] for name in names]
    base_ms = data["rows"]["hello world"]["import_ms"]
    fig, axes = plt.subplots(figsize=(8, 3.6))
    bars = axes.barh(names, values, color=["#888888", "#aaaaaa", "#d62728", "#ff9896"][: len(names)])
    axes.axvline(base_ms * data["target_ratio"], color="black", linestyle="--", linewidth=1)
    axes.text(
        base_ms * data["target_ratio"],
        len(names) - 0.55,
        f" target {data['target_ratio']}x hello world",
        fontsize=8,
    )
    for bar, value in zip(bars, values, strict=True):
        label = f" {value:.0f} ms ({value / base_ms:.2f}x)"
        axes.text(value, bar.get_y() + bar.get_height() / 2, label, va="center")
    axes.invert_yaxis()
    axes.set(xlabel=f"import time, ms (median of {data['rounds']} fresh processes)", title="Cold import")
    axes.set_xlim(0, max(values) * 1.35)
    fig.tight_layout()
    path = folder / "cold_import.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]


def client_speed(report: dict[str, Any], folder: Path) -> list[Path]:
    """Bootstrap time against N, ours and the floor (``python -m bench client-speed``'s report)."""
    rows = report["bootstrap"]
    sizes = [row["events"] for row in rows]
    fig, axes = plt.subplots(figsize=(7, 4.4))
    axes.plot(sizes, [row["bootstrap_seconds"] for row in rows], marker="o", label="bootstrap (ours)")
    axes.plot(sizes, [row["floor_seconds"] for row in rows], marker="s", label="floor: executemany")
    axes.plot(
        sizes,
        [row["floor_seconds"] * 2.5 for row in rows],
        linestyle="--",
        color="gray",
        label="2.5x the floor (target)",
    )
    for row in rows:
        axes.annotate(
            f"{row['ratio_to_floor']}x",
            (row["events"], row["bootstrap_seconds"]),
            textcoords="offset points",
            xytext=(-10, 8),
            fontsize=8,
        )
    load = report["load_average"]
    axes.set(
        xscale="log",
        yscale="log",
        xlabel="events bootstrapped (archived segments of 10,000)",
        ylabel="seconds",
        title=f"Bootstrap against SQLite's floor (load {load['start']}..{load['end']}, 2 CPUs)",
    )
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    fig.tight_layout()
    path = folder / "client_speed.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]


def write_all(report: dict[str, Any], folder: Path) -> list[Path]:
    return throughput(report, folder) + cold_import(report, folder)
