"""pss-bench: benchmark suite for Personalized Image Semantic Segmentation.

Importing the package is cheap (no torch, no MMSegmentation): the command line, the scorer and the
leaderboard need only NumPy and Pillow. Components are registered in MMSegmentation's registries by
importing :mod:`pss_bench.plugins`, which every config does through ``custom_imports``.
"""
__version__ = "0.1.0"
