"""IAS thresholds against the release. ``released_ias_stream`` transcribes Raykoooo/IAST at
24db9912403a01faf34884d60c9778cd48651bde, ``code/sseg/workflow/sl_trainer.py`` (file:line per line),
and runs beside ``ias_stream(released_precision=True)`` on softmax maps whose confidences sit close
to 1 (where float16 rounds), with classes absent from some batches."""
from __future__ import annotations

import numpy as np
import pytest

from pss_bench.inference.ias_labels import ias_stream


def released_ias_thresh(conf_dict, num_classes, alpha, w, gamma):
    """sl_trainer.py:436-445."""
    cls_thresh = np.ones(num_classes, dtype=np.float32)                                   # 440
    for idx_cls in np.arange(0, num_classes):                                             # 441
        if conf_dict[idx_cls] is not None:                                                # 442
            arr = np.array(conf_dict[idx_cls])                                            # 443
            cls_thresh[idx_cls] = np.percentile(arr, 100 * (1 - alpha * w[idx_cls] ** gamma))  # 444
    return cls_thresh                                                                     # 445


def released_ias_stream(batches, num_classes, alpha, beta, gamma):
    """sl_trainer.py:143, 159-182 (the batch's softmax already taken, 155)."""
    cls_thresh = np.ones(num_classes) * 0.9                                               # 143
    for probs in batches:                                                                 # (N, C, H, W)
        label_pred = probs.argmax(axis=1)                                                 # 159-160
        logits_pred = probs.max(axis=1)                                                   # 161
        logits_cls_dict = {c: [cls_thresh[c]] for c in range(num_classes)}                # 163
        for cls in range(num_classes):                                                    # 164
            logits_cls_dict[cls].extend(logits_pred[label_pred == cls].astype(np.float16))  # 165
        tmp_cls_thresh = released_ias_thresh(logits_cls_dict, num_classes, alpha, cls_thresh, gamma)  # 168
        cls_thresh = beta * cls_thresh + (1 - beta) * tmp_cls_thresh                       # 170
        cls_thresh[cls_thresh >= 1] = 0.999                                               # 171
        labels = []
        for logit in probs:                                                               # 174-177
            label = np.argmax(logit, axis=0)                                              # 178
            logit_amax = np.amax(logit, axis=0)                                           # 179
            label_cls_thresh = cls_thresh[label]                                          # 180
            label[logit_amax < label_cls_thresh] = 255                                    # 181-182
            labels.append(label.astype(np.uint8))
        yield labels, cls_thresh.copy()


def _confident_batches(num_batches=12, n=2, c=5, h=9, w=11, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for b in range(num_batches):
        logits = rng.normal(0.0, 1.0, (n, c, h, w)) + 9.0 * rng.random((n, 1, h, w)) * np.eye(c)[
            rng.integers(0, c - (b % 2), (n, h, w))].transpose(0, 3, 1, 2)  # class c-1 absent in odd batches
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        out.append((e / e.sum(axis=1, keepdims=True)).astype(np.float32))
    return out


@pytest.mark.parametrize("alpha,gamma", [(0.2, 8.0), (0.5, 8.0), (0.3, 1.0)])
def test_released_precision_equals_the_release(alpha, gamma):
    batches = _confident_batches()
    ours_stream = ias_stream(([(p.max(axis=0), p.argmax(axis=0)) for p in probs] for probs in batches),
                             5, alpha, 0.9, gamma, released_precision=True)
    for (labels, theta), (our_labels, our_theta, _) in zip(released_ias_stream(batches, 5, alpha, 0.9, gamma),
                                                          ours_stream):
        np.testing.assert_array_equal(our_theta, theta)
        for a, b in zip(our_labels, labels):
            np.testing.assert_array_equal(a, b)


def test_default_precision_is_a_different_computation():
    batches = _confident_batches()
    released = [theta for _, theta in released_ias_stream(batches, 5, 0.2, 0.9, 8.0)]
    ours = [theta for _, theta, _ in ias_stream(([(p.max(axis=0), p.argmax(axis=0)) for p in probs]
                                                 for probs in batches), 5, 0.2, 0.9, 8.0)]
    gap = max(float(np.abs(a - b).max()) for a, b in zip(ours, released))
    assert 0 < gap < 1e-3  # float16 spacing near 1 is 2**-11 ~ 4.9e-4
