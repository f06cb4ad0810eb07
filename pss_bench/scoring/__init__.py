"""Scoring of prediction folders and archives: validation with complete error lists, safe archive
extraction, streaming parallel scoring, the score tables and the Codabench scoring program.
Loads neither torch nor MMSegmentation (tested)."""
from .archive import extract_archive, is_archive
from .report import format_tables
from .score import PhotoScore, ScoreResult, score_predictions
from .submission import DataError, SubmissionError, expected_photos, plan_submission

__all__ = [
    "score_predictions", "ScoreResult", "PhotoScore", "format_tables", "SubmissionError", "DataError",
    "expected_photos", "plan_submission", "extract_archive", "is_archive",
]
