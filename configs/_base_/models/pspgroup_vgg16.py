# PSS network (OURS-S1) on VGG-16-BN (up to conv4_3, output stride 8): stage 0: aux FCN head on the
# pool3 features (256 ch, stride 8); stage 1: PSP module + group context module + classifier on the
# conv4_3 features (512 ch, stride 8). Released model: PSPGroupOCROnBase(ecd='vgg16') of zhangyuygss/PSS.
_base_ = ['./pspgroup_r50.py']
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    backbone=dict(_delete_=True, type='VGG16BNOS8', norm_cfg=norm_cfg, norm_eval=False, init_cfg=None),
    decode_head=[
        # released aux decoder for VGG: 1x1 conv 256->256, BN, ReLU, 1x1 conv -> 21
        dict(_base_.model.decode_head[0], in_channels=256, channels=256),
        # ppm_channels None = in_channels // 4 = 128, as released
        dict(_base_.model.decode_head[1], in_channels=512),
    ])
