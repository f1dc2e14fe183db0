"""The report's pictures, drawn with matplotlib straight into PNG bytes (nothing touches the disk)."""
from __future__ import annotations

import io
import math
from typing import Any


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    return plt


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    _pyplot().close(figure)
    return buffer.getvalue()


def loss_curves_png(entries: list[dict[str, Any]]) -> bytes:
    """One panel per training stage, every loss term against the step (log scale), as in losses.png."""
    plt = _pyplot()
    stages = list(dict.fromkeys(str(e.get("stage", "?")) for e in entries))
    figure, axes = plt.subplots(1, len(stages), figsize=(5 * len(stages), 3.5), squeeze=False)
    for axis, stage in zip(axes[0], stages, strict=True):
        rows = [e for e in entries if str(e.get("stage", "?")) == stage]
        names = [k for k in rows[-1] if k not in ("step", "stage")]
        for name in names:
            points = [(e["step"], e[name]) for e in rows if isinstance(e.get(name), int | float) and e[name] > 0]
            if points:
                axis.plot(*zip(*points, strict=True), label=name, linewidth=1)
        axis.set_title(f"stage: {stage}")
        axis.set_xlabel("step")
        axis.set_yscale("log")
        axis.legend(fontsize=7)
    figure.subplots_adjust(left=0.08, right=0.98, bottom=0.15, top=0.9, wspace=0.25)
    return _png(figure)


def stats_png(stats: dict[str, Any]) -> bytes:
    """The target's frame with the far and close ankle lines, the median floor, and a bar of the
    standing height at each line: what the source's motion is mapped onto."""
    plt = _pyplot()
    w, h = (int(v) for v in stats["frame_size"])
    hip_x = float(stats.get("hip_x", w / 2))
    width_in = 6.0
    figure, axis = plt.subplots(figsize=(width_in, max(2.0, width_in * h / w)))
    axis.add_patch(plt.Rectangle((0, 0), w, h, facecolor="#f4f4f4", edgecolor="black", linewidth=1))
    lines = (("ankle_far_y", "height_far", "#1f77b4", "far"), ("ankle_close_y", "height_close", "#d62728", "close"))
    for spread, (y_key, height_key, colour, label) in zip((-0.08, 0.08), lines, strict=True):
        y, height = float(stats[y_key]), float(stats[height_key])
        axis.axhline(y, color=colour, linewidth=1.5, label=f"{label} ankles: y = {y:.1f} px")
        x = hip_x + spread * w
        axis.plot([x, x], [y, y - height], color=colour, linewidth=4, solid_capstyle="butt",
                  label=f"height at {label} line: {height:.1f} px")
    floor = stats.get("ankle_y")
    if isinstance(floor, int | float) and math.isfinite(floor):
        axis.axhline(float(floor), color="#555555", linestyle="--", linewidth=1, label=f"median floor: y = {floor:.1f} px")
    axis.axvline(hip_x, color="#2ca02c", linestyle=":", linewidth=1, label=f"median hip x = {hip_x:.1f} px")
    axis.set_xlim(0, w)
    axis.set_ylim(h, 0)  # image coordinates: y grows downwards
    axis.set_aspect("equal")
    axis.set_title(f"target frame {w} x {h} px", fontsize=9)
    axis.tick_params(labelsize=7)
    axis.legend(fontsize=6, loc="upper left", framealpha=0.85)
    figure.tight_layout()
    return _png(figure)
