# Plain segmentor of the ResNet-50 baselines (the released PSS network without its group context):
# dilated ResNet-50 (deep 3x3 stem, output stride 8) -> PSP head (512 ch) on stage 4 -> 21 classes,
# plus an auxiliary FCN head on stage 3 (CE weight 0.4). Released model: zhangyuygss/PSS
# advent/model/psp.py (Encoder + _PSPModule + aux_decoder); docs/methods/released_pss.md#network.
# ImageNet weights are set by the harness (`--pretrained`): backbone.init_cfg =
# dict(type='PSSPretrained', checkpoint=..., arch='resnet50'); init_cfg=None is a random backbone.
#
# Plain BN, as released (single GPU). Multi-GPU training would need norm_cfg=dict(type='SyncBN', ...)
# and model_wrapper_cfg=dict(type='MMSeparateDistributedDataParallel') (one DDP per submodule, as GAN
# training does); the UDA training steps of baselines/ run on one device for now.
norm_cfg = dict(type='BN', requires_grad=True)
data_preprocessor = dict(
    type='SegDataPreProcessor',  # the UDA configs swap in PairedSegDataPreProcessor (same arguments)
    mean=[123.675, 116.28, 103.53],  # ImageNet RGB mean/std, as the released loader
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255)
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    pretrained=None,
    backbone=dict(
        type='ResNetV1c',
        depth=50,
        # stem 3x3 convs 64-64-128 as the torchcv/CCT "deep base" ResNet-50 of the released code
        # (3x3resnet50-imagenet.pth). mmseg's resnet50_v1c weights need stem_channels=64 (32-32-64).
        stem_channels=128,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        strides=(1, 2, 1, 1),
        dilations=(1, 1, 2, 4),  # output stride 8; first block of a dilated stage at half dilation
        contract_dilation=True,
        norm_cfg=norm_cfg,
        norm_eval=False,
        style='pytorch',
        init_cfg=None),
    decode_head=dict(
        # the released PSP head (baselines/psp_head.py): branches in_channels // 4 wide, branch
        # up-sampling align_corners=False, classifier without bias -- the PSP part of PSPGroupHead,
        # so the baselines and pss_s1 differ only in the context module. mmseg's PSPHead (every
        # branch 512 wide, align_corners=True, biased classifier): pspnet_mmseg_r50.py.
        type='ReleasedPSPHead',
        in_channels=2048,
        in_index=3,
        channels=512,
        pool_scales=(1, 2, 3, 6),
        ppm_channels=None,  # in_channels // 4: 512 for ResNet-50, 128 for VGG-16, as released
        ppm_align_corners=False,
        dropout_ratio=0.0,  # released PSP classifier has no dropout (mmseg's PSPNet uses 0.1)
        num_classes=21,
        norm_cfg=norm_cfg,
        align_corners=True,  # released code upsamples logits with align_corners=True
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0, avg_non_ignore=True)),
    auxiliary_head=dict(
        # released aux decoder: 1x1 conv 1024->1024, BN, ReLU, 1x1 conv -> 21 (with bias), no dropout
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
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
