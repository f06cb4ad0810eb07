"""pss-bench: benchmark suite for Personalized Image Semantic Segmentation.

Importing the package registers its MMSegmentation components (datasets, the UDA pairing, the group
batch sampler, the paired data preprocessor, the PSSMetric evaluator).
"""
__version__ = "0.1.0"

from pss_bench import datasets  # noqa: E402,F401  (registration side effect)
from pss_bench.evaluation import mmseg_metric  # noqa: E402,F401  (PSSMetric)
