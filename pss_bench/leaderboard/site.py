"""Writing the leaderboard's files: the markdown, the per-board figures, one CSV per table and the
web page, with the manifest of what a render wrote (:func:`render_leaderboard`).

Above both renderers: it imports the markdown side (:mod:`.render`) and the page (:mod:`.html`),
which itself builds on :mod:`.render`; neither imports this module.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from pss_bench.io import atomic_write_text

from .render import OutputConflict, _read_manifest, collect_entries, manifest_path, render_markdown


def render_leaderboard(results_dir: str | os.PathLike | None, reference_dir: str | os.PathLike | None,
                       out_md: str | os.PathLike, *, figures: bool = True, html: bool = False,
                       skip_invalid: bool = False, warn: Callable[[str], None] | None = None,
                       force: bool = False) -> Path:
    """Render the leaderboard markdown, its per-board FIoU figures, one CSV per table (in
    ``csv/`` beside it) and, with ``html``, ``index.html`` beside it.

    The board writes and removes only its own files: ``<stem>.manifest.json`` lists what a render
    wrote; the next render removes the listed files it no longer produces, and refuses to replace
    a file it would write that exists and is not listed (a file of someone else's), unless ``force``.

    Args:
        results_dir: folder of scored records (read recursively; ``leaderboard/results`` by
            convention), or None.
        reference_dir: folder of paper reference records (``default_reference_dir()`` for the
            shipped ones), or None to leave them out.
        out_md: markdown file to write (atomically); figures, CSVs and the page go next to it.
        figures: also draw the figures (matplotlib).
        html: also write the self-contained web page ``index.html``.
        skip_invalid: leave out unreadable records (reported through ``warn``) instead of failing.
        force: replace files that exist and are not in the manifest.
    Returns:
        ``out_md``.
    Raises:
        pss_bench.records.RecordError: a folder is missing or a record is invalid (named); nothing
            is written then.
        OutputConflict: a file to write exists and is not the board's (named); nothing is written.
    """
    import json

    out_md = Path(out_md)
    entries = collect_entries(results_dir, reference_dir, skip_invalid=skip_invalid, warn=warn)
    markdown, drawn, tables = render_markdown(entries, out_md.stem if figures else None)
    page = None
    if html:
        from .html import render_html

        page = render_html(entries)
    folder = out_md.parent
    manifest = manifest_path(out_md)
    owned = _read_manifest(manifest)
    outputs = ([out_md.name] + ([f.file for f in drawn] if figures else []) + [t.csv_path for t in tables]
               + (["index.html"] if page is not None else []))
    foreign = [name for name in outputs if name not in owned and (folder / name).exists()]
    if foreign and not force:
        raise OutputConflict(f"{folder / foreign[0]}: exists and was not written by an earlier render "
                             f"(not listed in {manifest}); move it away or pass --force to replace "
                             + ("it" if len(foreign) == 1 else f"it and {len(foreign) - 1} more"))
    folder.mkdir(parents=True, exist_ok=True)
    if figures:
        from .figure import fiou_heatmap

        for fig in drawn:
            fiou_heatmap(folder / fig.file, fig.title, fig.rows, fig.columns, fig.values)
    for table in tables:
        atomic_write_text(folder / table.csv_path, table.csv())
    if page is not None:
        atomic_write_text(folder / "index.html", page)
    atomic_write_text(out_md, markdown)
    for name in sorted(owned - set(outputs)):  # the board's own files it no longer produces
        stale = folder / name
        if stale.is_file() and not stale.is_symlink() and stale.resolve().is_relative_to(folder.resolve()):
            stale.unlink()
    atomic_write_text(manifest, json.dumps({"written_by": "pss-bench leaderboard",
                                            "files": sorted(set(outputs))}, indent=1) + "\n")
    return out_md
