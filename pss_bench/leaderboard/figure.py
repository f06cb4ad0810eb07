"""Per-user FIoU heat map of every entry of one backbone (matplotlib, Agg, deterministic bytes)."""
from __future__ import annotations

import io
import math
import os
from collections.abc import Sequence
from pathlib import Path

from pss_bench.io import atomic_write_bytes


def fiou_heatmap(path: str | os.PathLike, title: str, rows: Sequence[str], columns: Sequence[str],
                 values: Sequence[Sequence[float | None]]) -> Path:
    """Write a heat map PNG: one row per entry, one column per user (plus Mean).

    Args:
        path: output PNG (written atomically).
        title: figure title.
        rows: entry labels, top to bottom.
        columns: column labels (``"1"`` ... ``"15"``, ``"Mean"``).
        values: ``len(rows) x len(columns)`` scores in percent; None = not reported (grey).
    """
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    data = np.array([[math.nan if v is None else float(v) for v in row] for row in values], dtype=float)
    masked = np.ma.masked_invalid(data)
    fig = Figure(figsize=(1.2 + 0.55 * len(columns), 1.2 + 0.42 * max(len(rows), 1)), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.set_facecolor("#dddddd")  # grey where a value is not reported
    finite = data[np.isfinite(data)]
    vmin, vmax = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 100.0)
    if vmax - vmin < 1e-9:
        vmin, vmax = vmin - 1.0, vmax + 1.0
    image = ax.imshow(masked, cmap="viridis", vmin=vmin, vmax=vmax, aspect="auto")
    for i in range(data.shape[0]):
        for j in range(data.shape[1]):
            if np.isfinite(data[i, j]):
                shade = (data[i, j] - vmin) / (vmax - vmin)
                ax.text(j, i, f"{data[i, j]:.1f}", ha="center", va="center", fontsize=7,
                        color="black" if shade > 0.6 else "white")
    ax.set_xticks(range(len(columns)), labels=list(columns), fontsize=8)
    ax.set_yticks(range(len(rows)), labels=list(rows), fontsize=8)
    ax.set_xlabel("user")
    ax.set_title(f"{title}; grey = not reported", fontsize=10)
    fig.colorbar(image, ax=ax, label="FIoU (%)", fraction=0.03, pad=0.02)
    fig.tight_layout()
    buffer = io.BytesIO()
    # No "Software"/date metadata: the same records give the same bytes.
    fig.savefig(buffer, format="png", metadata={"Software": None})
    return atomic_write_bytes(path, buffer.getvalue())
