"""How far IAST's released float16 confidences move the IAS thresholds and labels: the same stream of
softmax maps through ``ias_stream`` with ``released_precision`` off and on (docs/methods/iast.md).

The maps are synthetic (one album of ``--photos`` photos, 21 classes, confidences spread up to 1,
where float16's step is 2**-11); the figures bound the effect on a real album, they are not one.
Prints, per alpha, the largest threshold gap over the stream and the share of pixels whose pseudo
label differs."""
from __future__ import annotations

import argparse

import numpy as np

from pss_bench.inference.ias_labels import ias_stream


def album(photos: int, classes: int, height: int, width: int, seed: int) -> list[list[tuple]]:
    rng = np.random.default_rng(seed)
    batches = []
    for start in range(0, photos, 2):  # IAS batches of 2, as released
        batch = []
        for _ in range(min(2, photos - start)):
            logits = rng.normal(0.0, 1.0, (classes, height, width))
            logits[rng.integers(0, classes, (height, width)), np.arange(height)[:, None], np.arange(width)] += \
                rng.uniform(0.0, 14.0, (height, width))
            e = np.exp(logits - logits.max(axis=0))
            p = (e / e.sum(axis=0)).astype(np.float32)
            batch.append((p.max(axis=0), p.argmax(axis=0)))
        batches.append(batch)
    return batches


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--photos", type=int, default=80)
    parser.add_argument("--size", type=int, nargs=2, default=(72, 96), metavar=("H", "W"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    batches = album(args.photos, 21, *args.size, args.seed)
    for alpha in (0.2, 0.25, 0.3, 0.5):
        exact = list(ias_stream(iter(batches), 21, alpha))
        half = list(ias_stream(iter(batches), 21, alpha, released_precision=True))
        gap = max(float(np.abs(a[1] - b[1]).max()) for a, b in zip(exact, half))
        differ = sum(int((x != y).sum()) for a, b in zip(exact, half) for x, y in zip(a[0], b[0]))
        total = sum(x.size for a in exact for x in a[0])
        print(f"alpha {alpha}: max |theta_float64 - theta_released| = {gap:.2e}, "
              f"labels differ at {differ} of {total} pixels ({100 * differ / total:.4f} %)")


if __name__ == "__main__":
    main()
