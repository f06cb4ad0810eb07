# MRNet stage 1 (IJCAI 2020; baselines/mrnet.py): class-balanced (max 7, small class = 1/128 of the
# crop area: the released 64*64*n pixels at 512x1024) hard-pixel (top 20 %) source CE, main + 0.5 aux;
# multi-scale LS discriminators (3 scales) on both heads' target softmax with the fused source
# prediction as "real", lambda_adv main 1e-3 / aux 2e-4, R1 0.01; memory regularisation
# KL(p_bar || p_main) + KL(p_bar || p_aux), lambda_kl 0.1, from kl_start_iter (released 15k of a 25k
# snapshot: 0.6 of the run; the harness's presets are shorter, so set it per run). Optimisation: the
# suite's two-optimiser schedule (D Adam 1e-4 as released) with MRNet's released generator rates.
_base_ = ['../datasets/pss_uda.py', '../default_runtime.py', '../schedules/pss_poly_120k_adv.py']
uda_model = dict(
    type='MRNet',
    lambda_adv=dict(main=1e-3, aux=2e-4),
    discriminator=dict(type='MultiScaleDiscriminator', in_channels=21, channels=32, num_scales=3),
    lambda_kl=0.1, kl_start_iter=15000, r1_weight=0.01, lambda_aux=0.5,
    class_balance=True, often_balance=True, max_weight=7.0, small_class_fraction=1 / 128,
    hard_percentile=80.0)
# The released generator rates, not the suite's 2.5e-3 on every parameter: Nesterov SGD 2e-4, heads
# x 10 (trainer_ms.py 104-105), for fidelity. With the pre-parity loss (1x-7x the released one) the
# suite's rate made the source loss rise and FIoU fall from 28.3 to 16.1; on the released loss it
# gives 29.21 / 13.17 against 28.97 / 13.01 here (PSS-Synth, vgg16, users 1-5;
# docs/synth_benchmark.md#mrnet). Not ported: the released 5000-iteration warm-up from 0.1 x lr.
optim_wrapper = dict(segmentor=dict(
    optimizer=dict(type='SGD', lr=2e-4, momentum=0.9, weight_decay=5e-4, nesterov=True),
    paramwise_cfg=dict(custom_keys={'decode_head': dict(lr_mult=10.0), 'auxiliary_head': dict(lr_mult=10.0)})))
