"""Data on disk: the official PSS layout and list files (``layout``), label PNGs (``labels``), the
PSS-Synth generator (``synth/``), the install check (``check``) and the grouping of photos
(``cluster``).

NumPy, Pillow, OpenCV and scikit-learn; torch only inside ``cluster``'s CNN features, imported when
used. May import ``pss_bench.io``, ``classes`` and ``paths``; nothing above it (datasets, models,
harness) is imported here.
"""
