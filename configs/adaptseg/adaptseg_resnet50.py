# AdaptSeg (Tsai et al., CVPR 2018): source CE + multi-level output-space adversarial alignment of
# the target softmax maps, one FCDiscriminator per output level. lambda_adv main 1e-3 / aux 2e-4:
# AdaptSegNet multi-level LAMBDA_ADV_TARGET2/1 (research/baselines.md 1), discriminators Adam 1e-4
# betas (0.9, 0.99). The rest as the released PSS code (methods-pss-hiast.md 1.5): aux CE 0.4
# (AdaptSegNet: 0.1), batch 8, 320x320 crops with 0.5-2x scale jitter and flip, SGD lr 2.5e-3 wd 5e-4
# (paper text: 2.5e-4 / 1e-4), poly 0.9 against 250k for both optimisers, stop at 120k.
_base_ = [
    '../_base_/models/pspnet_r50.py',
    '../_base_/datasets/pss_uda.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/pss_poly_120k_adv.py',
]
# default_runtime.py imports pss_bench and pss_bench.baselines (methods, discriminator, VGG backbone,
# PSSPretrained initializer, MultiOptimWrapperConstructor) through custom_imports.
model = dict(
    _delete_=True,
    type='AdaptSeg',
    lambda_adv=dict(main=1e-3, aux=2e-4),
    discriminator=dict(type='FCDiscriminator', in_channels=21, channels=64),
    gan_loss='bce',
    segmentor=_base_.model,  # the plain segmentor of the model base (predict/test delegate to it)
    data_preprocessor=dict(
        _base_.data_preprocessor, type='PairedSegDataPreProcessor', size=_base_.crop_size))
