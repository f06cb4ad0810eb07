"""The leaderboard: markdown (paper Tables 1-5 layout), web page, CSVs, per-user FIoU figures,
reference records."""
from .reference import default_reference_dir, load_records
from .render import render_markdown
from .site import render_leaderboard

__all__ = ["render_leaderboard", "render_markdown", "load_records", "default_reference_dir"]
