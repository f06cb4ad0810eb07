# AdaptSeg (Tsai et al., CVPR 2018): source CE + multi-level output-space adversarial alignment of the
# target softmax maps, one FCDiscriminator per output level. lambda_adv main 1e-3 / aux 2e-4:
# AdaptSegNet's multi-level LAMBDA_ADV_TARGET2/1 (docs/methods/baselines.md#adaptseg), discriminators
# Adam 1e-4 betas (0.9, 0.99). The rest as the released PSS recipe (aux CE 0.4; AdaptSegNet: 0.1).
_base_ = ['../datasets/pss_uda.py', '../default_runtime.py', '../schedules/pss_poly_120k_adv.py']
uda_model = dict(
    type='AdaptSeg',
    lambda_adv=dict(main=1e-3, aux=2e-4),
    discriminator=dict(type='FCDiscriminator', in_channels=21, channels=64),
    gan_loss='bce')
