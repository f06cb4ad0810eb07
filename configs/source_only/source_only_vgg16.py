# No-DA (source only) baseline: supervised CE on VOC crops, CE(main) + 0.4 CE(aux), no target term.
# Defaults follow the released PSS code (research/methods-pss-hiast.md 1.5): aux CE weight 0.4 (ADVENT and
# AdaptSeg use 0.1), batch 8, 320x320 crops with 0.5-2x scale jitter and flip, SGD lr 2.5e-3 wd 5e-4
# (the paper text: 2.5e-4 / 1e-4), poly 0.9 against 250k, stop at 120k.
_base_ = [
    '../_base_/models/pspnet_vgg16.py',
    '../_base_/datasets/pss_uda.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/pss_poly_120k.py',
]
# default_runtime.py imports pss_bench and pss_bench.baselines (methods, discriminator, VGG backbone,
# PSSPretrained initializer, MultiOptimWrapperConstructor) through custom_imports.
model = dict(
    _delete_=True,
    type='SourceOnly',
    segmentor=_base_.model,  # the plain segmentor of the model base (predict/test delegate to it)
    data_preprocessor=dict(
        _base_.data_preprocessor, type='PairedSegDataPreProcessor', size=_base_.crop_size))
