"""The PSS evaluator: FIoU / MIoU per user under the ``pss2021`` and ``strict`` protocols,
bootstrap confidence intervals, and ``PSSMetric`` for MMEngine's val/test loops.

``PSSMetric`` is imported lazily (it pulls in MMEngine and MMSegmentation); import
``pss_bench.evaluation.mmseg_metric`` to register it in ``mmseg.registry.METRICS``.
"""
from .bootstrap import BootstrapResult, bootstrap_ci
from .metrics import (
    DEFAULT_PROTOCOL, PROTOCOL_DESCRIPTIONS, PROTOCOLS, PSSEvaluator, UserAccumulator, UserScore,
    check_protocol, class_iou, count_photo, foreground_terms, joint_counts, mean_class_iou,
    photo_fiou, photo_histogram,
)

__all__ = [
    "PROTOCOLS", "DEFAULT_PROTOCOL", "PROTOCOL_DESCRIPTIONS", "PSSEvaluator", "UserAccumulator",
    "UserScore", "check_protocol", "class_iou", "count_photo", "foreground_terms", "joint_counts",
    "mean_class_iou", "photo_fiou", "photo_histogram", "bootstrap_ci", "BootstrapResult", "PSSMetric",
]


def __getattr__(name: str):
    if name == "PSSMetric":
        from .mmseg_metric import PSSMetric

        return PSSMetric
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
