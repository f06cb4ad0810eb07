"""Every method as an MMSegmentation plug-in model (installed as ``pss_bench.baselines``).

Importing this package registers, in ``mmseg.registry``: the models ``UDASegmentor``, ``SourceOnly``,
``MinEnt``, ``AdvEnt``, ``AdaptSeg`` and ``FCDiscriminator``, the optimiser-wrapper constructor
``MultiOptimWrapperConstructor``, the PSS pieces ``PSPGroupHead`` (group context module) and
``PseudoLabelAdvEnt`` (OURS-S2), and the remaining baselines ``MaxSquare``, ``FDA``, ``MRNet`` /
``MRNetRectified`` with MRNet's ``MRNetHead``, ``FusedEncoderDecoder`` and ``MultiScaleDiscriminator``,
and the self-training rounds ``IAST`` and ``HIAST``. Configs import it through ``pss_bench.plugins``,
which also registers the backbone, the preprocessor, the datasets and the harness.
"""
from .adaptseg import AdaptSeg
from .adversarial import AdversarialUDASegmentor
from .advent import AdvEnt
from .discriminator import FCDiscriminator, MultiScaleDiscriminator
from .entropy import entropy_loss, entropy_map, self_information
from .export import export_segmentor_checkpoint, plain_segmentor_config
from .fda import FDA
from .group_context import PSPGroupHead
from .hiast import HIAST, IAST
from .maxsquare import MaxSquare
from .minent import MinEnt
from .mrnet import MRNet, MRNetRectified
from .mrnet_head import FusedEncoderDecoder, MRNetHead
from .optim import MultiOptimWrapperConstructor
from .pss_s2 import PseudoLabelAdvEnt
from .source_only import SourceOnly
from .uda import UDASegmentor

__all__ = [
    "AdaptSeg", "AdvEnt", "AdversarialUDASegmentor", "FCDiscriminator", "FDA", "FusedEncoderDecoder",
    "HIAST", "IAST", "MRNet", "MRNetHead", "MRNetRectified", "MaxSquare", "MinEnt",
    "MultiOptimWrapperConstructor", "MultiScaleDiscriminator", "PSPGroupHead", "PseudoLabelAdvEnt",
    "SourceOnly", "UDASegmentor", "entropy_loss", "entropy_map", "export_segmentor_checkpoint",
    "plain_segmentor_config", "self_information",
]
