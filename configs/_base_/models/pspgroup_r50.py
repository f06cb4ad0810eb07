# PSS network (OURS-S1) on ResNet-50: dilated ResNet (output stride 8, deep 3x3 stem) -> stage 0: aux FCN
# head on layer 3 (its logits are the soft object regions and the aux prediction, CE weight 0.4) ->
# stage 1: PSP module + group context module + classifier on layer 4 (baselines/group_context.py).
# Released model: PSPGroupOCROnBase(ecd='resnet50') of zhangyuygss/PSS; docs/pss_method.md maps the layers.
# PSPGroupHead is registered by importing pss_bench.baselines (default_runtime.py's custom_imports);
# no custom_imports here, since two bases of one config may not both define it.

norm_cfg = dict(type='BN', requires_grad=True)  # plain BN, trainable, as released (no SyncBN on CPU)
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],  # ImageNet RGB mean/std (released loader, not ADVENT's BGR mean)
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,  # after normalisation: pads with the mean colour, as the released crop padding
    seg_pad_val=255)
model = dict(
    type='CascadeEncoderDecoder',
    num_stages=2,
    data_preprocessor=data_preprocessor,
    pretrained=None,
    backbone=dict(
        type='ResNetV1c',
        depth=50,
        # stem 3x3 convs 64-64-128 as the released "deep base" ResNet-50, the same backbone as
        # pspnet_r50.py (the AdvEnt baselines); mmseg's resnet50_v1c weights need stem_channels=64.
        stem_channels=128,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        strides=(1, 2, 1, 1),
        dilations=(1, 1, 2, 4),
        norm_cfg=norm_cfg,
        norm_eval=False,
        style='pytorch',
        contract_dilation=True,
        init_cfg=None),  # ImageNet weights: set by the harness (--pretrained), as pspnet_r50.py
    decode_head=[
        # released aux decoder: 1x1 conv 1024->1024, BN, ReLU, 1x1 conv -> 21 (with bias), no dropout
        dict(
            type='FCNHead',
            in_channels=1024,
            in_index=2,
            channels=1024,
            num_convs=1,
            kernel_size=1,
            concat_input=False,
            dropout_ratio=0.0,
            num_classes=21,
            norm_cfg=norm_cfg,
            align_corners=True,
            loss_decode=dict(
                type='CrossEntropyLoss', use_sigmoid=False, loss_weight=0.4, avg_non_ignore=True)),
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
            norm_cfg=norm_cfg,
            align_corners=True,
            loss_decode=dict(
                type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0, avg_non_ignore=True)),
    ],
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
