"""The 21 PASCAL VOC classes used by PSS (index 0 = background) and the VOC palette."""
from __future__ import annotations

NUM_CLASSES = 21
IGNORE_INDEX = 255  # VOC "void": object borders and unlabelled pixels in ground truth

CLASSES: tuple[str, ...] = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
    "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
    "sheep", "sofa", "train", "tvmonitor",
)


def voc_palette() -> list[int]:
    """Flat 768-entry PIL palette of PASCAL VOC (bit-interleaved colour map); index 255 is white."""
    palette = []
    for index in range(256):
        r = g = b = 0
        c = index
        for shift in range(7, -1, -1):  # VOC devkit's labelcolormap: 3 bits per round, MSB first
            r |= ((c >> 0) & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        palette += [r, g, b]
    palette[3 * 255:3 * 256] = [255, 255, 255]
    return palette


PALETTE: list[list[int]] = [voc_palette()[3 * i:3 * i + 3] for i in range(NUM_CLASSES)]
