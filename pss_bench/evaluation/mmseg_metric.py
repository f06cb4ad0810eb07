"""``PSSMetric``: the pss-bench evaluator as an MMEngine metric (``mmseg.registry.METRICS``).

Config::

    val_evaluator = dict(type="PSSMetric", protocol="pss2021")

Results are grouped per user: the ``user`` metainfo key set by ``PSSDataset``, else the
``/id<k>/`` component of ``img_path``. Returned keys (plain floats, percent), with the protocol as
prefix: ``pss2021/fiou_mean``, ``pss2021/miou_mean``, ``pss2021/fiou_id1``, ``pss2021/miou_id1``, ...
"""
from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger, print_log
from mmseg.registry import METRICS

from .metrics import DEFAULT_PROTOCOL, PSSEvaluator, check_protocol, joint_counts

_USER_IN_PATH = re.compile(r"[/\\]id(\d+)[/\\]")


def _get(sample, key: str):
    """Field of a data sample given as a dict (what MMEngine's evaluator passes) or an element."""
    if isinstance(sample, dict):
        return sample.get(key)
    return getattr(sample, key, None) if key in sample else None


def _label_map(field, what: str) -> np.ndarray:
    data = field["data"] if isinstance(field, dict) else getattr(field, "data", field)
    if hasattr(data, "detach"):
        data = data.detach().cpu().numpy()
    data = np.asarray(data)
    if data.ndim == 3 and data.shape[0] == 1:
        data = data[0]
    if data.ndim != 2:
        raise ValueError(f"{what} must be a (1, H, W) or (H, W) label map, got shape {data.shape}")
    return data


def sample_user(sample) -> int:
    """User id of a data sample: metainfo ``user``, else ``/id<k>/`` in ``img_path``."""
    user = _get(sample, "user")
    if user is not None:
        return int(user)
    path = _get(sample, "img_path") or _get(sample, "seg_map_path") or ""
    match = _USER_IN_PATH.search(str(path))
    if match is None:
        raise ValueError(f"cannot tell the user of sample {path!r}: no 'user' metainfo and no "
                         "/id<k>/ folder in its path")
    return int(match.group(1))


@METRICS.register_module()
class PSSMetric(BaseMetric):
    """Per-user FIoU and MIoU of PSS (see :mod:`pss_bench.evaluation.metrics`).

    Args:
        protocol: ``"pss2021"`` (official PSS code) or ``"strict"`` (VOC/MMSeg semantics).
        per_class: also return ``{protocol}/iou_id<k>_<class>`` for every user and class.
        collect_device, prefix: as in :class:`mmengine.evaluator.BaseMetric`; the prefix defaults
            to the protocol name.
    """

    default_prefix = None

    def __init__(self, protocol: str = DEFAULT_PROTOCOL, per_class: bool = False,
                 collect_device: str = "cpu", prefix: str | None = None, **kwargs) -> None:
        self.protocol = check_protocol(protocol)
        self.per_class = per_class
        super().__init__(collect_device=collect_device, prefix=prefix or protocol, **kwargs)

    def process(self, data_batch, data_samples: Sequence) -> None:
        """Reduce each sample to its user and ``(22, 21)`` joint counts (small, picklable)."""
        for sample in data_samples:
            pred = _label_map(_get(sample, "pred_sem_seg"), "pred_sem_seg")
            gt_field = _get(sample, "gt_sem_seg")
            if gt_field is None:
                raise ValueError("PSSMetric needs gt_sem_seg in every data sample (annotated photos only)")
            gt = _label_map(gt_field, "gt_sem_seg")
            self.results.append((sample_user(sample), joint_counts(gt, pred)))

    def compute_metrics(self, results: list) -> dict[str, float]:
        evaluator = PSSEvaluator(self.protocol)
        for user, counts in results:
            evaluator.add_counts(user, counts)
        users = evaluator.compute()
        mean = evaluator.mean(users)
        metrics: dict[str, float] = {"fiou_mean": float(mean["fiou"]), "miou_mean": float(mean["miou"])}
        for user, score in users.items():
            metrics[f"fiou_id{user}"] = float(score.fiou)
            metrics[f"miou_id{user}"] = float(score.miou)
        if self.per_class:
            from pss_bench.classes import CLASSES

            for user, score in users.items():
                for name, value in zip(CLASSES, score.per_class_iou):
                    metrics[f"iou_id{user}_{name}"] = float(value)
        summary = "  ".join(f"id{u} {s.fiou:.2f}/{s.miou:.2f}" for u, s in users.items())
        print_log(f"[{self.protocol}] FIoU/MIoU per user: {summary}  mean "
                  f"{mean['fiou']:.2f}/{mean['miou']:.2f}", logger=MMLogger.get_current_instance())
        return metrics
