# AdvEnt (Vu et al., CVPR 2019): source CE + adversarial alignment of the target weighted
# self-information maps, one FCDiscriminator per output level; the released PSS step-1 training without
# its group context module (docs/methods/released_pss.md): lambda_adv main 1e-3 / aux 2e-4,
# discriminators Adam 1e-4 betas (0.9, 0.99), aux CE 0.4 (ADVENT: 0.1), SGD 2.5e-3 wd 5e-4 (paper
# text: 2.5e-4 / 1e-4), poly 0.9 against 250k for both optimisers, stop at 120k.
_base_ = ['../datasets/pss_uda.py', '../default_runtime.py', '../schedules/pss_poly_120k_adv.py']
uda_model = dict(
    type='AdvEnt',
    lambda_adv=dict(main=1e-3, aux=2e-4),
    discriminator=dict(type='FCDiscriminator', in_channels=21, channels=64),
    gan_loss='bce')
