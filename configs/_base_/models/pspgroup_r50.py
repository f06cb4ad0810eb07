# PSS network (OURS-S1) on ResNet-50: dilated ResNet (output stride 8, deep 3x3 stem) -> stage 0: aux FCN
# head on layer 3 (its logits are the soft object regions and the aux prediction, CE weight 0.4) ->
# stage 1: PSP module + group context module + classifier on layer 4 (baselines/group_context.py).
# Released model: PSPGroupOCROnBase(ecd='resnet50') of zhangyuygss/PSS; docs/pss_method.md maps the layers.
# The backbone, the aux head and the preprocessing are pspnet_r50.py's (the AdvEnt baselines' network).

_base_ = ['./pspnet_r50.py']
model = dict(
    _delete_=True,
    type='CascadeEncoderDecoder',
    num_stages=2,
    data_preprocessor=_base_.data_preprocessor,
    pretrained=None,
    backbone=_base_.model.backbone,  # ImageNet weights: set by the harness (--pretrained)
    decode_head=[
        _base_.model.auxiliary_head,  # stage 0: the released aux decoder, CE weight 0.4
        dict(
            type='PSPGroupHead',
            in_channels=2048,
            in_index=3,
            channels=512,
            pool_scales=(1, 2, 3, 6),
            ppm_channels=None,  # in_channels // 4 = 512, as released
            context='group',  # 'global', 'image', 'none': ablations (docs/pss_method.md)
            key_channels=256,
            temperature=8.0,
            context_dropout=0.05,
            dropout_ratio=0.0,
            num_classes=21,
            norm_cfg=_base_.norm_cfg,
            align_corners=True,
            loss_decode=dict(
                type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0, avg_non_ignore=True)),
    ],
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
