"""Every method as an MMSegmentation plug-in model (installed as ``pss_bench.baselines``).

Importing this package registers, in ``mmseg.registry``: the models ``UDASegmentor``, ``SourceOnly``,
``MinEnt``, ``AdvEnt``, ``AdaptSeg`` and ``FCDiscriminator``, the optimiser-wrapper constructor
``MultiOptimWrapperConstructor``, the PSS pieces ``PSPGroupHead`` (group context module) and
``PseudoLabelAdvEnt`` (OURS-S2), and (through ``pss_bench.models``) the ``VGG16BNOS8`` backbone and the
``PSSPretrained`` weight initializer.
"""
import pss_bench.models  # noqa: F401  (backbone + ImageNet weight initializer used by the configs)

from .adaptseg import AdaptSeg
from .advent import AdvEnt
from .discriminator import FCDiscriminator
from .entropy import entropy_loss, entropy_map, self_information
from .group_context import PSPGroupHead
from .minent import MinEnt
from .optim import MultiOptimWrapperConstructor
from .pss_s2 import PseudoLabelAdvEnt
from .source_only import SourceOnly
from .uda import (AdversarialUDASegmentor, UDASegmentor, export_segmentor_checkpoint,
                  plain_segmentor_config)

__all__ = [
    "AdaptSeg", "AdvEnt", "AdversarialUDASegmentor", "FCDiscriminator", "MinEnt",
    "MultiOptimWrapperConstructor", "PSPGroupHead", "PseudoLabelAdvEnt", "SourceOnly", "UDASegmentor", "entropy_loss", "entropy_map",
    "export_segmentor_checkpoint", "plain_segmentor_config", "self_information",
]
