"""PSS-Synth's object classes (silhouettes, colours, textures), user profiles and the vectorised
drawing primitives. Pure NumPy."""
from __future__ import annotations

import numpy as np

from typing import TYPE_CHECKING

from pss_bench.classes import CLASSES

if TYPE_CHECKING:
    from .render import _Instance

# ----------------------------------------------------------------------------------------------
# Object classes: silhouettes, colours, textures
# ----------------------------------------------------------------------------------------------
# A silhouette is a list of primitives drawn in order in the object's local frame, where the
# object fills roughly [-1, 1]^2 (u to the right, v downwards). Each primitive paints a part:
# 1 = body (textured), 2 = accent (wheels, legs, frames), 3 = second accent (windows, skin, screen).


def _circles_around(cx: float, cy: float, rx: float, ry: float, n: int, r: float, part: int) -> list:
    """``n`` circles of radius ``r`` on an ellipse: a fluffy outline (sheep wool, foliage)."""
    angles = np.linspace(0.0, 2 * np.pi, n, endpoint=False)
    return [("ell", part, (cx + rx * np.cos(a), cy + ry * np.sin(a), r, r)) for a in angles]


_LEGS4 = lambda y0, y1, w, part=2: [  # noqa: E731  (four legs of an animal, front and back pairs)
    ("seg", part, (x, y0, x + dx, y1, w))
    for x, dx in ((-0.45, -0.05), (-0.3, 0.02), (0.3, 0.0), (0.45, 0.05))
]

SHAPES: dict[str, list] = {
    "aeroplane": [
        ("ell", 1, (0.0, 0.0, 0.95, 0.16)),
        ("poly", 1, ((-0.95, 0.02), (-0.62, 0.02), (-0.92, -0.58))),  # tail fin
        ("poly", 1, ((0.18, 0.0), (-0.22, 0.0), (-0.5, 0.6), (-0.32, 0.6))),  # swept wing
        ("ell", 3, (0.74, -0.05, 0.13, 0.07)),  # cockpit
        ("seg", 2, (-0.6, -0.04, 0.55, -0.04, 0.03)),  # window line
    ],
    "bicycle": [
        ("ring", 2, (-0.55, 0.35, 0.25, 0.38)),
        ("ring", 2, (0.55, 0.35, 0.25, 0.38)),
        ("seg", 1, (-0.55, 0.35, 0.0, 0.35, 0.07)),
        ("seg", 1, (0.0, 0.35, 0.3, -0.2, 0.07)),
        ("seg", 1, (-0.55, 0.35, -0.15, -0.2, 0.07)),
        ("seg", 1, (-0.15, -0.2, 0.3, -0.2, 0.07)),
        ("seg", 1, (0.3, -0.2, 0.55, 0.35, 0.07)),
        ("seg", 1, (0.0, 0.35, -0.2, -0.35, 0.06)),
        ("seg", 2, (0.3, -0.2, 0.38, -0.5, 0.06)),  # handlebar stem
        ("box", 2, (-0.35, -0.42, -0.05, -0.33)),  # saddle
    ],
    "bird": [
        ("ell", 1, (0.0, 0.05, 0.55, 0.33)),
        ("ell", 1, (0.5, -0.3, 0.23, 0.22)),
        ("poly", 1, ((-0.45, -0.05), (-0.45, 0.15), (-0.95, 0.22), (-0.95, -0.12))),  # tail
        ("poly", 2, ((0.68, -0.37), (0.68, -0.22), (0.97, -0.28))),  # beak
        ("ell", 3, (0.55, -0.36, 0.05, 0.05)),  # eye
        ("seg", 2, (0.1, 0.35, 0.05, 0.7, 0.04)),
        ("seg", 2, (-0.1, 0.35, -0.15, 0.7, 0.04)),
    ],
    "boat": [
        ("poly", 1, ((-0.95, 0.25), (0.95, 0.25), (0.7, 0.62), (-0.7, 0.62))),  # hull
        ("seg", 2, (0.0, 0.25, 0.0, -0.92, 0.04)),  # mast
        ("poly", 3, ((0.06, -0.88), (0.06, 0.16), (0.7, 0.16))),  # sail
        ("poly", 3, ((-0.06, -0.7), (-0.06, 0.16), (-0.5, 0.16))),
        ("box", 2, (-0.95, 0.25, 0.95, 0.32)),  # gunwale
    ],
    "bottle": [
        ("rbox", 1, (0.0, 0.3, 0.3, 0.62, 0.1)),
        ("ell", 1, (0.0, -0.32, 0.3, 0.18)),
        ("box", 1, (-0.11, -0.85, 0.11, -0.3)),
        ("box", 2, (-0.13, -0.98, 0.13, -0.84)),  # cap
        ("box", 3, (-0.3, 0.12, 0.3, 0.5)),  # label
    ],
    "bus": [
        ("rbox", 1, (0.0, 0.0, 1.0, 0.52, 0.12)),
        ("winrow", 3, (-0.9, -0.38, 0.88, -0.06, 6)),
        ("box", 3, (0.84, -0.38, 0.98, 0.3)),  # windscreen / door
        ("ell", 2, (-0.6, 0.5, 0.17, 0.17)),
        ("ell", 2, (0.6, 0.5, 0.17, 0.17)),
    ],
    "car": [
        ("rbox", 1, (0.0, 0.18, 0.95, 0.24, 0.12)),
        ("poly", 1, ((-0.58, -0.04), (0.48, -0.04), (0.26, -0.46), (-0.42, -0.46))),
        ("poly", 3, ((-0.46, -0.08), (-0.06, -0.08), (-0.06, -0.38), (-0.36, -0.38))),
        ("poly", 3, ((0.02, -0.08), (0.38, -0.08), (0.21, -0.38), (0.02, -0.38))),
        ("ell", 2, (-0.55, 0.42, 0.2, 0.2)),
        ("ell", 2, (0.55, 0.42, 0.2, 0.2)),
    ],
    "cat": [
        ("ell", 1, (-0.12, 0.28, 0.6, 0.34)),
        ("ell", 1, (0.55, -0.2, 0.3, 0.27)),
        ("poly", 1, ((0.3, -0.32), (0.5, -0.42), (0.34, -0.74))),  # ears
        ("poly", 1, ((0.62, -0.42), (0.82, -0.32), (0.8, -0.74))),
        ("seg", 1, (-0.66, 0.25, -0.95, -0.45, 0.08)),  # tail
        ("ell", 3, (0.47, -0.24, 0.05, 0.06)),  # eyes
        ("ell", 3, (0.68, -0.24, 0.05, 0.06)),
        ("seg", 1, (-0.45, 0.45, -0.48, 0.85, 0.08)),
        ("seg", 1, (0.25, 0.45, 0.28, 0.85, 0.08)),
    ],
    "chair": [
        ("box", 1, (-0.5, -0.95, -0.28, 0.12)),  # back rest
        ("box", 1, (-0.5, -0.02, 0.5, 0.16)),  # seat
        ("seg", 2, (-0.42, 0.14, -0.45, 0.95, 0.07)),
        ("seg", 2, (0.42, 0.14, 0.45, 0.95, 0.07)),
        ("seg", 2, (-0.4, -0.7, -0.4, -0.3, 0.04)),
    ],
    "cow": [
        ("rbox", 1, (-0.05, 0.0, 0.68, 0.33, 0.2)),
        ("poly", 1, ((0.55, -0.25), (0.7, -0.32), (0.95, -0.05), (0.8, 0.1))),  # head
        ("poly", 2, ((0.62, -0.33), (0.66, -0.48), (0.72, -0.33))),  # horn
        ("ell", 3, (0.93, -0.03, 0.07, 0.06)),  # muzzle
        *_LEGS4(0.25, 0.95, 0.09, part=1),
        ("seg", 1, (-0.72, -0.2, -0.82, 0.35, 0.04)),  # tail
    ],
    "diningtable": [
        ("box", 1, (-1.0, -0.35, 1.0, -0.18)),  # top
        ("box", 1, (-0.9, -0.18, 0.9, -0.08)),  # apron
        ("seg", 2, (-0.8, -0.1, -0.82, 0.9, 0.07)),
        ("seg", 2, (0.8, -0.1, 0.82, 0.9, 0.07)),
        ("seg", 2, (-0.45, -0.1, -0.46, 0.7, 0.06)),
        ("ell", 3, (-0.45, -0.38, 0.22, 0.07)),  # plates and a glass on the table
        ("ell", 3, (0.35, -0.38, 0.22, 0.07)),
        ("box", 3, (-0.02, -0.55, 0.08, -0.35)),
    ],
    "dog": [
        ("ell", 1, (-0.05, 0.1, 0.6, 0.3)),
        ("ell", 1, (0.6, -0.28, 0.26, 0.23)),
        ("ell", 1, (0.86, -0.2, 0.15, 0.1)),  # snout
        ("ell", 2, (0.48, -0.2, 0.09, 0.2)),  # floppy ear
        ("ell", 3, (0.98, -0.23, 0.04, 0.04)),  # nose
        *_LEGS4(0.25, 0.92, 0.08, part=1),
        ("seg", 1, (-0.62, 0.0, -0.9, -0.35, 0.06)),  # tail
    ],
    "horse": [
        ("ell", 1, (-0.1, -0.05, 0.6, 0.27)),
        ("poly", 1, ((0.35, -0.2), (0.55, -0.25), (0.78, -0.75), (0.6, -0.8))),  # neck
        ("poly", 1, ((0.6, -0.82), (0.78, -0.75), (0.98, -0.5), (0.9, -0.42))),  # head
        ("poly", 2, ((0.55, -0.78), (0.62, -0.83), (0.4, -0.25), (0.33, -0.24))),  # mane
        *[("seg", 1, (x, 0.15, x + dx, 0.97, 0.065))
          for x, dx in ((-0.55, -0.04), (-0.4, 0.03), (0.2, 0.0), (0.35, 0.05))],
        ("seg", 2, (-0.68, -0.12, -0.85, 0.45, 0.06)),  # tail
    ],
    "motorbike": [
        ("ell", 2, (-0.6, 0.4, 0.32, 0.32)),
        ("ell", 2, (0.62, 0.4, 0.32, 0.32)),
        ("ell", 3, (-0.6, 0.4, 0.13, 0.13)),
        ("ell", 3, (0.62, 0.4, 0.13, 0.13)),
        ("poly", 1, ((-0.5, 0.25), (0.2, 0.25), (0.45, -0.15), (-0.1, -0.2))),
        ("ell", 1, (0.1, -0.22, 0.28, 0.13)),  # tank
        ("box", 2, (-0.55, -0.28, -0.1, -0.18)),  # seat
        ("seg", 1, (0.45, -0.15, 0.62, 0.4, 0.06)),  # fork
        ("seg", 2, (0.4, -0.45, 0.5, -0.12, 0.05)),
    ],
    "person": [
        ("ell", 3, (0.0, -0.78, 0.17, 0.2)),  # head (skin)
        ("seg", 3, (0.0, -0.62, 0.0, -0.5, 0.07)),  # neck
        ("poly", 1, ((-0.36, -0.55), (0.36, -0.55), (0.28, 0.18), (-0.28, 0.18))),  # torso
        ("seg", 1, (-0.34, -0.5, -0.48, 0.12, 0.08)),  # arms
        ("seg", 1, (0.34, -0.5, 0.48, 0.12, 0.08)),
        ("ell", 3, (-0.48, 0.16, 0.07, 0.07)),  # hands
        ("ell", 3, (0.48, 0.16, 0.07, 0.07)),
        ("seg", 2, (-0.15, 0.15, -0.18, 0.97, 0.1)),  # legs
        ("seg", 2, (0.15, 0.15, 0.18, 0.97, 0.1)),
    ],
    "pottedplant": [
        *_circles_around(0.0, -0.35, 0.38, 0.3, 7, 0.26, part=1),
        ("ell", 1, (0.0, -0.35, 0.4, 0.32)),
        ("seg", 1, (0.0, -0.1, 0.0, 0.36, 0.05)),  # stem
        ("poly", 2, ((-0.38, 0.32), (0.38, 0.32), (0.27, 0.95), (-0.27, 0.95))),  # pot
        ("box", 2, (-0.42, 0.28, 0.42, 0.4)),  # rim
    ],
    "sheep": [
        *_circles_around(-0.05, 0.0, 0.55, 0.3, 10, 0.2, part=1),
        ("ell", 1, (-0.05, 0.0, 0.58, 0.33)),
        ("ell", 2, (0.72, -0.18, 0.19, 0.15)),  # dark face
        ("ell", 2, (0.62, -0.28, 0.1, 0.05)),  # ear
        *_LEGS4(0.3, 0.92, 0.06, part=2),
    ],
    "sofa": [
        ("rbox", 1, (0.0, -0.2, 0.82, 0.32, 0.12)),  # back
        ("rbox", 1, (0.0, 0.32, 0.95, 0.22, 0.08)),  # seat
        ("rbox", 1, (-0.85, 0.1, 0.15, 0.42, 0.1)),  # arms
        ("rbox", 1, (0.85, 0.1, 0.15, 0.42, 0.1)),
        ("seg", 2, (-0.7, 0.52, -0.7, 0.66, 0.06)),  # feet
        ("seg", 2, (0.7, 0.52, 0.7, 0.66, 0.06)),
        ("seg", 2, (0.0, 0.12, 0.0, 0.5, 0.015)),  # cushion seam
    ],
    "train": [
        ("rbox", 1, (-0.05, -0.02, 0.95, 0.36, 0.06)),
        ("poly", 1, ((0.85, -0.38), (0.9, 0.34), (1.0, 0.34), (1.0, -0.1))),  # nose
        ("winrow", 3, (-0.92, -0.28, 0.8, -0.05, 7)),
        ("box", 2, (-1.0, 0.1, 0.9, 0.17)),  # livery band
        *[("ell", 2, (x, 0.4, 0.09, 0.09)) for x in (-0.8, -0.6, -0.2, 0.0, 0.4, 0.6)],
    ],
    "tvmonitor": [
        ("rbox", 1, (0.0, -0.12, 0.92, 0.6, 0.05)),  # frame
        ("box", 3, (-0.82, -0.64, 0.82, 0.4)),  # screen
        ("poly", 2, ((-0.1, 0.46), (0.1, 0.46), (0.16, 0.82), (-0.16, 0.82))),  # stand
        ("box", 2, (-0.45, 0.8, 0.45, 0.9)),
    ],
}

# Colourways per class: (body, texture, accent, second accent), RGB 0-255; an instance picks one.
COLOURS: dict[str, list[tuple]] = {
    "aeroplane": [((225, 228, 235), (150, 160, 175), (60, 70, 90), (40, 60, 120)),
                  ((235, 235, 235), (200, 40, 40), (70, 70, 80), (40, 60, 110))],
    "bicycle": [((200, 30, 40), (120, 20, 25), (30, 30, 30), (160, 160, 160)),
                ((30, 90, 200), (20, 50, 120), (30, 30, 30), (160, 160, 160))],
    "bird": [((150, 110, 60), (90, 60, 30), (240, 160, 40), (20, 20, 20)),
             ((230, 200, 40), (160, 130, 20), (240, 120, 30), (20, 20, 20)),
             ((60, 90, 170), (30, 50, 110), (230, 150, 40), (20, 20, 20))],
    "boat": [((245, 245, 240), (170, 170, 165), (120, 80, 40), (235, 110, 70)),
             ((40, 80, 160), (230, 230, 230), (110, 80, 50), (245, 245, 235))],
    "bottle": [((40, 120, 60), (200, 240, 210), (200, 170, 40), (230, 230, 220)),
               ((120, 70, 30), (230, 200, 160), (30, 30, 30), (240, 240, 230)),
               ((140, 190, 220), (240, 250, 255), (30, 80, 180), (220, 60, 60))],
    "bus": [((240, 190, 30), (200, 150, 20), (35, 35, 35), (150, 190, 220)),
            ((200, 40, 40), (150, 25, 25), (35, 35, 35), (150, 190, 220))],
    "car": [((200, 30, 30), (255, 255, 255), (25, 25, 25), (120, 150, 180)),
            ((40, 70, 160), (255, 255, 255), (25, 25, 25), (120, 150, 180)),
            ((180, 180, 185), (255, 255, 255), (25, 25, 25), (110, 140, 170))],
    "cat": [((225, 140, 60), (150, 80, 30), (150, 80, 30), (60, 160, 60)),
            ((130, 130, 135), (60, 60, 65), (60, 60, 65), (200, 180, 40)),
            ((40, 40, 40), (80, 80, 80), (80, 80, 80), (220, 200, 50))],
    "chair": [((150, 95, 50), (110, 65, 30), (90, 55, 25), (120, 80, 40)),
              ((60, 60, 65), (40, 40, 45), (30, 30, 30), (80, 80, 80))],
    "cow": [((245, 245, 240), (25, 25, 25), (200, 190, 170), (230, 170, 170)),
            ((140, 80, 40), (245, 240, 230), (200, 190, 170), (230, 170, 170))],
    "diningtable": [((170, 110, 60), (130, 80, 40), (110, 70, 35), (245, 245, 245)),
                    ((230, 225, 215), (200, 195, 185), (120, 90, 60), (250, 250, 250))],
    "dog": [((190, 140, 80), (140, 95, 50), (90, 55, 30), (30, 30, 30)),
            ((60, 45, 35), (120, 90, 60), (40, 30, 25), (20, 20, 20)),
            ((235, 225, 200), (200, 180, 140), (150, 110, 70), (30, 30, 30))],
    "horse": [((140, 80, 40), (110, 60, 30), (40, 30, 25), (220, 210, 200)),
              ((90, 60, 40), (70, 45, 30), (25, 20, 20), (240, 240, 240)),
              ((220, 215, 205), (190, 185, 175), (120, 110, 100), (60, 60, 60))],
    "motorbike": [((30, 30, 30), (240, 240, 240), (20, 20, 20), (190, 190, 195)),
                  ((200, 40, 30), (255, 255, 255), (20, 20, 20), (190, 190, 195))],
    "person": [((60, 90, 170), (230, 230, 235), (40, 40, 60), (225, 180, 150)),
               ((200, 60, 60), (240, 200, 200), (50, 50, 55), (160, 110, 80)),
               ((60, 140, 90), (220, 240, 220), (90, 70, 50), (240, 200, 170)),
               ((240, 240, 235), (180, 180, 190), (40, 50, 80), (110, 75, 55))],
    "pottedplant": [((50, 130, 50), (20, 80, 25), (190, 100, 60), (60, 160, 60)),
                    ((80, 150, 60), (30, 90, 30), (230, 225, 215), (200, 60, 90))],
    "sheep": [((235, 230, 215), (195, 190, 175), (40, 35, 30), (60, 55, 50))],
    "sofa": [((120, 60, 140), (90, 40, 110), (60, 40, 30), (150, 90, 170)),
             ((60, 100, 150), (40, 70, 110), (60, 40, 30), (90, 130, 180)),
             ((190, 170, 140), (160, 140, 110), (60, 40, 30), (210, 190, 160))],
    "train": [((200, 40, 40), (240, 240, 240), (40, 40, 45), (150, 180, 210)),
              ((240, 240, 240), (30, 90, 180), (30, 90, 180), (150, 180, 210)),
              ((60, 120, 60), (230, 200, 40), (230, 200, 40), (150, 180, 210))],
    "tvmonitor": [((25, 25, 28), (240, 200, 120), (40, 40, 45), (60, 100, 200)),
                  ((210, 210, 215), (120, 220, 140), (120, 120, 125), (50, 60, 140))],
}

# Texture per class: (kind, part it covers, frequency, amplitude). Frequencies count periods across
# the object's local box; amplitude is the mix towards the texture colour.
TEXTURES: dict[str, tuple[str, int, float, float]] = {
    "aeroplane": ("stripes", 1, 3.0, 0.15),
    "bicycle": ("gloss", 1, 1.0, 0.5),
    "bird": ("stripes", 1, 9.0, 0.45),
    "boat": ("stripes", 1, 5.0, 0.3),
    "bottle": ("gloss", 1, 1.0, 0.6),
    "bus": ("stripes", 1, 1.5, 0.3),
    "car": ("gloss", 1, 1.0, 0.45),
    "cat": ("stripes", 1, 7.0, 0.6),
    "chair": ("grain", 1, 12.0, 0.35),
    "cow": ("blotch", 1, 3.0, 1.0),
    "diningtable": ("grain", 1, 16.0, 0.3),
    "dog": ("noise", 1, 4.0, 0.4),
    "horse": ("noise", 1, 2.0, 0.25),
    "motorbike": ("gloss", 1, 1.0, 0.5),
    "person": ("checks", 1, 7.0, 0.35),
    "pottedplant": ("dots", 1, 9.0, 0.6),
    "sheep": ("dots", 1, 13.0, 0.4),
    "sofa": ("checks", 1, 11.0, 0.25),
    "train": ("stripes", 1, 1.0, 0.2),
    "tvmonitor": ("noise", 3, 3.0, 0.8),
}

OBJECT_CLASSES: tuple[str, ...] = CLASSES[1:]
_CLASS_INDEX = {name: i for i, name in enumerate(CLASSES)}

# Rotation range (degrees) per class: upright things barely tilt, flying things bank.
_TILT = {"aeroplane": 25.0, "bird": 25.0}

# ----------------------------------------------------------------------------------------------
# User profiles: class priors and preferred backgrounds
# ----------------------------------------------------------------------------------------------
PROFILES: dict[str, dict] = {
    "pets": dict(classes={"cat": 5, "dog": 5, "bird": 2, "sofa": 1.5, "person": 1, "pottedplant": 1},
                 backgrounds={"room": 5, "texture": 2, "outdoors": 2, "gradient": 1}),
    "vehicles": dict(classes={"car": 5, "bus": 3, "motorbike": 3, "bicycle": 3, "train": 2, "person": 1},
                     backgrounds={"street": 6, "outdoors": 2, "gradient": 1}),
    "people_food": dict(classes={"person": 5, "diningtable": 3, "bottle": 3, "chair": 2, "pottedplant": 1},
                        backgrounds={"room": 5, "texture": 3, "gradient": 1}),
    "home": dict(classes={"sofa": 3, "tvmonitor": 3, "chair": 3, "pottedplant": 2, "cat": 1, "person": 1},
                 backgrounds={"room": 6, "texture": 2, "gradient": 1}),
    "countryside": dict(classes={"cow": 3, "horse": 3, "sheep": 3, "bird": 2, "dog": 1, "person": 1},
                        backgrounds={"outdoors": 6, "gradient": 1}),
    "travel": dict(classes={"aeroplane": 3, "boat": 3, "train": 2, "person": 3, "bus": 1},
                   backgrounds={"outdoors": 4, "street": 3, "gradient": 1}),
}
"""Per-user class priors (relative weights) and background preferences; user k follows profile
``(k - 1) % 6`` in this order, perturbed per user, with 10 % of the mass spread over other classes."""

BACKGROUNDS = ("gradient", "texture", "room", "outdoors", "street")


# ----------------------------------------------------------------------------------------------
# Vectorised drawing primitives (u, v: arrays of local coordinates, broadcastable)
# ----------------------------------------------------------------------------------------------
def _prim_mask(kind: str, args, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    if kind == "ell":
        cx, cy, rx, ry = args
        return ((u - cx) / rx) ** 2 + ((v - cy) / ry) ** 2 <= 1.0
    if kind == "box":
        x0, y0, x1, y1 = args
        return (u >= x0) & (u <= x1) & (v >= y0) & (v <= y1)
    if kind == "rbox":
        cx, cy, hw, hh, r = args
        dx = np.maximum(np.abs(u - cx) - (hw - r), 0.0)
        dy = np.maximum(np.abs(v - cy) - (hh - r), 0.0)
        return dx * dx + dy * dy <= r * r
    if kind == "ring":
        cx, cy, r_in, r_out = args
        d2 = (u - cx) ** 2 + (v - cy) ** 2
        return (d2 <= r_out * r_out) & (d2 >= r_in * r_in)
    if kind == "seg":  # capsule: distance to the segment p-q at most w
        x0, y0, x1, y1, w = args
        dx, dy = x1 - x0, y1 - y0
        t = np.clip(((u - x0) * dx + (v - y0) * dy) / (dx * dx + dy * dy), 0.0, 1.0)
        return (u - x0 - t * dx) ** 2 + (v - y0 - t * dy) ** 2 <= w * w
    if kind == "poly":  # convex polygon as an intersection of half-planes (either winding)
        pts = np.asarray(args, dtype=np.float32)
        area2 = np.sum(pts[:, 0] * np.roll(pts[:, 1], -1) - np.roll(pts[:, 0], -1) * pts[:, 1])
        sign = 1.0 if area2 > 0 else -1.0
        inside = np.ones(np.broadcast(u, v).shape, dtype=bool)
        for (ax, ay), (bx, by) in zip(pts, np.roll(pts, -1, axis=0)):
            inside &= sign * ((bx - ax) * (v - ay) - (by - ay) * (u - ax)) >= 0.0
        return inside
    if kind == "winrow":  # a row of n windows
        x0, y0, x1, y1, n = args
        frac = ((u - x0) / (x1 - x0) * n) % 1.0
        return (u >= x0) & (u <= x1) & (v >= y0) & (v <= y1) & (frac < 0.78)
    raise ValueError(f"unknown primitive {kind!r}")


def _value_noise(x: np.ndarray, y: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Smooth noise in [0, 1]: bilinear interpolation (smoothstep-weighted) of a periodic random
    grid at positions (x, y) measured in grid cells."""
    n0, n1 = grid.shape
    x0, y0 = np.floor(x), np.floor(y)
    fx, fy = x - x0, y - y0
    fx, fy = fx * fx * (3 - 2 * fx), fy * fy * (3 - 2 * fy)
    xi, yi = x0.astype(np.int64) % n1, y0.astype(np.int64) % n0
    xj, yj = (xi + 1) % n1, (yi + 1) % n0
    top = grid[yi, xi] * (1 - fx) + grid[yi, xj] * fx
    bottom = grid[yj, xi] * (1 - fx) + grid[yj, xj] * fx
    return top * (1 - fy) + bottom * fy


def _texture(kind: str, freq: float, u: np.ndarray, v: np.ndarray, inst: "_Instance") -> np.ndarray:
    """Texture weight in [0, 1] at local coordinates (object-attached, so it moves with the object)."""
    ph = inst.phase
    if kind == "stripes":
        a = inst.tex_angle
        return 0.5 + 0.5 * np.sin(np.pi * freq * (u * np.cos(a) + v * np.sin(a)) + ph)
    if kind == "grain":  # wood: stripes along the object, warped by noise
        warp = _value_noise((u + 2) * 2, (v + 2) * 2, inst.noise)
        return 0.5 + 0.5 * np.sin(np.pi * freq * (v + 0.15 * u) + 4 * warp + ph)
    if kind == "checks":
        return ((np.floor(freq * u / 2 + ph) + np.floor(freq * v / 2 + ph)) % 2).astype(np.float32)
    if kind == "dots":
        fu = (freq * u / 2 + ph) % 1.0 - 0.5
        fv = (freq * v / 2 + ph * 0.7) % 1.0 - 0.5
        return (fu * fu + fv * fv < 0.09).astype(np.float32)
    if kind == "noise":
        return _value_noise((u + 2) * freq, (v + 2) * freq, inst.noise)
    if kind == "blotch":
        return (_value_noise((u + 2) * freq, (v + 2) * freq, inst.noise) > 0.55).astype(np.float32)
    if kind == "gloss":  # a specular band across the body
        return np.exp(-(((u * 0.6 + v * 0.8) - inst.gloss_offset) / 0.12) ** 2)
    return np.zeros(np.broadcast(u, v).shape, np.float32)
