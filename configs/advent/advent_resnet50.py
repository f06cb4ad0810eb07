# AdvEnt (Vu et al., CVPR 2019): source CE + adversarial alignment of the target weighted
# self-information maps, one FCDiscriminator per output level. As the released PSS step-1 training
# without its group context module (methods-pss-hiast.md 1.5): lambda_adv main 1e-3 / aux 2e-4,
# discriminators Adam 1e-4 betas (0.9, 0.99), aux CE 0.4 (ADVENT: 0.1), batch 8, 320x320 crops with
# 0.5-2x scale jitter and flip, SGD lr 2.5e-3 wd 5e-4 (paper text: 2.5e-4 / 1e-4), poly 0.9 against
# 250k for both optimisers, stop at 120k.
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
    type='AdvEnt',
    lambda_adv=dict(main=1e-3, aux=2e-4),
    discriminator=dict(type='FCDiscriminator', in_channels=21, channels=64),
    gan_loss='bce',
    segmentor=_base_.model,  # the plain segmentor of the model base (predict/test delegate to it)
    data_preprocessor=dict(
        _base_.data_preprocessor, type='PairedSegDataPreProcessor', size=_base_.crop_size))
