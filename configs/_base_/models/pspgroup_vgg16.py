# PSS network (OURS-S1) on VGG-16-BN (up to conv4_3, output stride 8): stage 0: aux FCN head on the
# pool3 features (256 ch, stride 8); stage 1: PSP module + group context module + classifier on the
# conv4_3 features (512 ch, stride 8). Released model: PSPGroupOCROnBase(ecd='vgg16') of zhangyuygss/PSS.
_base_ = ['./pspgroup_r50.py']
# VGG16BNOS8 and PSPGroupHead are registered by importing pss_bench.baselines (default_runtime.py).

norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    backbone=dict(_delete_=True, type='VGG16BNOS8', norm_cfg=norm_cfg, norm_eval=False, init_cfg=None),
    decode_head=[
        # released aux decoder for VGG: 1x1 conv 256->256, BN, ReLU, 1x1 conv -> 21
        dict(
            type='FCNHead',
            in_channels=256,
            in_index=2,
            channels=256,
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
            in_channels=512,
            in_index=3,
            channels=512,
            pool_scales=(1, 2, 3, 6),
            ppm_channels=None,  # in_channels // 4 = 128, as released
            context='group',
            key_channels=256,
            temperature=8.0,
            context_dropout=0.05,
            dropout_ratio=0.0,
            num_classes=21,
            norm_cfg=norm_cfg,
            align_corners=True,
            loss_decode=dict(
                type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0, avg_non_ignore=True)),
    ])
