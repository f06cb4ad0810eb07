# MRNet's heads on the suite's VGG-16-BN (conv4_3, output stride 8): main on concat(pool3 features
# 256 ch, conv4_3 512 ch) = 768 ch, aux on the pool3 features; see mrnet_r50.py.
_base_ = ['./mrnet_r50.py']
model = dict(
    backbone=dict(_delete_=True, type='VGG16BNOS8', norm_cfg={{_base_.norm_cfg}}, norm_eval=False,
                  init_cfg=None),
    decode_head=dict(in_channels=[256, 512]),
    auxiliary_head=dict(in_channels=256))
