"""Model pieces below the methods: the VGG-16 backbone (``vgg``), ImageNet weight loading
(``pretrained``), the paired source/target data preprocessor (``preprocessor``), the stand-in weight
file's name and key (``standin``; trained by ``pss_bench/harness/standin.py``) and the CNN photo
features of the grouping (``photo_features``). Importing this package registers ``VGG16BNOS8`` and
``PairedSegDataPreProcessor`` in ``mmseg.registry.MODELS`` and the ``PSSPretrained`` weight
initializer in MMEngine's ``WEIGHT_INITIALIZERS``. The ResNet-50 backbone is MMSegmentation's own
``ResNetV1c`` (``configs/_base_/models/pspnet_r50.py``). May import ``pss_bench.io``, ``paths`` and
``data/``; the methods (``pss_bench.baselines``) and the harness build on it, never the reverse
(``tests/test_packaging.py`` checks it).
"""
from .pretrained import (ARCHS, DEFAULT_CHECKPOINTS, LoadReport, PretrainedWeightsError,
                         PretrainedWeightsNotFound, PSSPretrainedInit, backbone_init_cfg,
                         load_pretrained, load_state_dict_file, required_stem_channels,
                         resolve_checkpoint)
from .preprocessor import PairedSegDataPreProcessor
from .vgg import VGG16BNOS8

__all__ = [
    "ARCHS", "DEFAULT_CHECKPOINTS", "LoadReport", "PretrainedWeightsError", "PretrainedWeightsNotFound",
    "PSSPretrainedInit", "VGG16BNOS8", "backbone_init_cfg", "load_pretrained", "load_state_dict_file",
    "required_stem_channels", "resolve_checkpoint", "PairedSegDataPreProcessor",
]
