# MRNet's segmentor on the suite's dilated ResNet-50 (baselines/mrnet_head.py): main head on
# concat(stage 3, stage 4) = 3072 ch, aux head on stage 3 (1024 ch), each: 1x1 + 3x3 dilation
# 6/12/18/24 branches (256 ch, GN, ReLU) -> SE -> 3x3 conv 512 (GN) -> Dropout2d 0.1 -> 1x1 (no bias).
# Prediction: main + 0.5 aux (FusedEncoderDecoder). layumi/Seg-Uncertainty model/deeplab_multi.py
# (on ResNet-101); docs/methods/baselines.md#mrnet. GroupNorm with 32 groups (--norm-style gn).
_base_ = ['./pspnet_r50.py']
gn_cfg = dict(type='GN', num_groups=32, requires_grad=True)
model = dict(
    type='FusedEncoderDecoder',
    aux_weight=0.5,
    decode_head=dict(
        _delete_=True, type='MRNetHead', in_channels=[1024, 2048], in_index=[2, 3],
        input_transform='resize_concat', channels=512, branch_channels=256, dilations=(6, 12, 18, 24),
        use_se=True, dropout_ratio=0.1, num_classes=21, norm_cfg=gn_cfg, align_corners=True,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0, avg_non_ignore=True)),
    auxiliary_head=dict(
        _delete_=True, type='MRNetHead', in_channels=1024, in_index=2, channels=512, branch_channels=256,
        dilations=(6, 12, 18, 24), use_se=True, dropout_ratio=0.1, num_classes=21, norm_cfg=gn_cfg,
        align_corners=True,
        # MRNet's aux weight 0.5 (README), not the suite's 0.4: the aux head is its uncertainty estimate
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=0.5, avg_non_ignore=True)))
