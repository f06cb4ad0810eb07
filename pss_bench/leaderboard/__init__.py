"""Markdown leaderboard (paper Tables 1-2 layout), per-user FIoU figures and reference records."""
from .reference import default_reference_dir, load_records
from .render import render_leaderboard, render_markdown

__all__ = ["render_leaderboard", "render_markdown", "load_records", "default_reference_dir"]
