"""Scoring of prediction folders and archives: validation with complete error lists, safe archive
extraction, streaming parallel scoring and the score tables."""
from .archive import extract_archive, is_archive
from .score import ScoreResult, format_tables, score_predictions
from .submission import DataError, SubmissionError, expected_photos, plan_submission

__all__ = [
    "score_predictions", "ScoreResult", "format_tables", "SubmissionError", "DataError",
    "expected_photos", "plan_submission", "extract_archive", "is_archive",
]
