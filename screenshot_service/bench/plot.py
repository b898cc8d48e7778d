"""The PNG plot: latency and throughput against concurrency, service vs floor vs naive."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .spec import PAGES


def available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def write_plot(results: Mapping[str, Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scenarios = list(results.get("scenarios", []))
    order = list(PAGES)
    pages = sorted({s["page"] for s in scenarios}, key=lambda p: order.index(p) if p in order else len(order))
    fig, (lat_ax, thr_ax) = plt.subplots(1, 2, figsize=(13, 5))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for index, page in enumerate(pages):
        rows = sorted((s for s in scenarios if s["page"] == page), key=lambda s: s["concurrency"])
        color = colors[index % len(colors)]
        xs = [s["concurrency"] for s in rows]
        _line(lat_ax, xs, [s["p50_ms"] for s in rows], color, "-", "o", f"{page} service p50")
        _line(lat_ax, xs, [s["floor_p50_ms"] for s in rows], color, "--", "x", f"{page} cold floor p50")
        _line(lat_ax, xs, [s.get("full_floor_p50_ms") for s in rows], color, ":", "+",
              f"{page} full-chromium floor p50")
        _line(thr_ax, xs, [s["throughput_per_s"] for s in rows], color, "-", "o", f"{page} service")
        _line(thr_ax, xs, [s["floor_throughput_per_s"] for s in rows], color, "--", "x", f"{page} cold floor")
        _line(thr_ax, xs, [s.get("full_floor_throughput_per_s") for s in rows], color, ":", "+",
              f"{page} full-chromium floor")
        warm = [(s["concurrency"], s["warm_floor_p50_ms"]) for s in rows if s.get("warm_floor_p50_ms") is not None]
        if warm:  # measured at concurrency 1 only (scenarios.py says why)
            lat_ax.scatter([w[0] for w in warm], [w[1] for w in warm], color=color, marker="v",
                           label=f"{page} warm floor p50")
        naive = [(s["concurrency"], s["naive_p50_ms"], s["naive_throughput_per_s"]) for s in rows
                 if s.get("naive_p50_ms") is not None]
        if naive:
            lat_ax.scatter([n[0] for n in naive], [n[1] for n in naive], color=color, marker="s",
                           label=f"{page} naive p50")
            thr_ax.scatter([n[0] for n in naive], [n[2] for n in naive], color=color, marker="s",
                           label=f"{page} naive")
    levels = sorted({s["concurrency"] for s in scenarios})
    for ax, title, unit in ((lat_ax, "p50 latency", "ms"), (thr_ax, "throughput", "captures / s")):
        ax.set_xscale("log", base=2)
        ax.set_xticks(levels, [str(level) for level in levels])
        ax.minorticks_off()
        ax.set_xlabel("concurrent requests")
        ax.set_ylabel(unit)
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="x-small")
    lat_ax.set_yscale("log")
    thr_ax.set_ylim(bottom=0)
    config = results.get("config", {})
    fig.suptitle(f"screenshot-service bench ({results.get('mode', '')}; pool_size {config.get('pool_size')}, "
                 f"{results.get('machine', {}).get('cpus')} CPUs)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _line(ax: Any, xs: list[int], ys: list[float | None], color: str, style: str, marker: str, label: str) -> None:
    points = [(x, y) for x, y in zip(xs, ys, strict=True) if y is not None]
    if points:
        ax.plot([p[0] for p in points], [p[1] for p in points], linestyle=style, marker=marker, color=color,
                label=label)
