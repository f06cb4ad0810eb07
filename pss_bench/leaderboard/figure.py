"""Per-user FIoU heat map of every entry of one board and backbone (matplotlib, Agg, deterministic
bytes). The colour scale spans the values shown (at least 1 point wide), so values from 30 to 58
get distinct colours; the title gives the range and every cell its number, since colours of two
figures do not compare."""
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
        columns: column labels (``"Mean"``, ``"1"`` ... ``"15"``).
        values: ``len(rows) x len(columns)`` scores in percent; None = not reported (grey).
    """
    fig = draw_heatmap(title, rows, columns, values)
    buffer = io.BytesIO()
    # No "Software"/date metadata: the same records give the same bytes.
    fig.savefig(buffer, format="png", metadata={"Software": None})
    return atomic_write_bytes(path, buffer.getvalue())


def draw_heatmap(title: str, rows: Sequence[str], columns: Sequence[str],
                 values: Sequence[Sequence[float | None]]):
    """The matplotlib Figure of :func:`fiou_heatmap` (not saved)."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    data = np.array([[math.nan if v is None else float(v) for v in row] for row in values], dtype=float)
    masked = np.ma.masked_invalid(data)
    # Cells keep their size; the floor keeps title, labels and colour bar legible for 1 row x 2 users.
    label_width = 0.075 * max((len(r) for r in rows), default=4)
    width = max(6.0, 1.6 + label_width + 0.6 * len(columns))
    height = max(2.6, 1.5 + 0.42 * len(rows))
    fig = Figure(figsize=(width, height), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.set_facecolor("#dddddd")  # grey where a value is not reported
    finite = data[np.isfinite(data)]
    # the data's own range, so that close values (30 to 58, say) get distinct colours
    vmin, vmax = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 100.0)
    if vmax - vmin < 1.0:
        vmin, vmax = vmin - 0.5, vmax + 0.5
    image = ax.imshow(masked, cmap="viridis", vmin=vmin, vmax=vmax, aspect="auto")
    for i in range(data.shape[0]):
        for j in range(data.shape[1]):
            if np.isfinite(data[i, j]):
                shade = (data[i, j] - vmin) / (vmax - vmin)
                ax.text(j, i, f"{data[i, j]:.1f}", ha="center", va="center", fontsize=8,
                        color="black" if shade > 0.6 else "white")
    ax.set_xticks(range(len(columns)), labels=list(columns), fontsize=8)
    ax.set_yticks(range(len(rows)), labels=list(rows), fontsize=8)
    ax.set_xlabel("user")
    ax.set_title(f"{title}\ngrey = not reported; colour scale {vmin:.1f}-{vmax:.1f} % (the values shown)",
                 fontsize=9)
    fig.colorbar(image, ax=ax, label="FIoU (%)", fraction=0.03, pad=0.02)
    fig.tight_layout()
    return fig
