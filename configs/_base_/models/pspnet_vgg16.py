# Plain segmentor of the VGG-16 baselines: VGG-16-BN up to conv4_3 (pools 1-3 only, output stride 8;
# pss_bench/models/vgg.py) -> PSP head on conv4_3 (512 ch) -> 21 classes, plus an auxiliary FCN head
# on the stride-8 pool3 features (256 ch, CE weight 0.4). Released model: zhangyuygss/PSS
# advent/model/psp.py (EncoderVGG); docs/methods/released_pss.md#network. The VGG16BNOS8 backbone is
# registered by `pss_bench.models` (imported by `pss_bench.baselines`).
# ImageNet weights: backbone.init_cfg = dict(type='PSSPretrained', checkpoint='vgg16_bn-6c64b313.pth',
# arch='vgg16'), set by the harness.
# The PSP head is the released one (ReleasedPSPHead: each pyramid branch in_channels // 4 = 128 wide);
# mmseg's PSPHead (512-wide branches): pspnet_mmseg_vgg16.py.
_base_ = ['./pspnet_r50.py']
model = dict(
    backbone=dict(_delete_=True, type='VGG16BNOS8', norm_cfg={{_base_.norm_cfg}}, norm_eval=False,
                  init_cfg=None),
    decode_head=dict(in_channels=512, in_index=3),
    # released aux decoder for VGG: 1x1 conv 256->256, BN, ReLU, 1x1 conv -> 21
    auxiliary_head=dict(in_channels=256, in_index=2, channels=256))
