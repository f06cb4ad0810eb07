# pspnet_vgg16.py with MMSegmentation's own PSPHead (512-wide pyramid branches against the released
# 128, align_corners=True in the branches, biased classifier); see pspnet_mmseg_r50.py.
_base_ = ['./pspnet_vgg16.py']
model = dict(decode_head=dict(
    _delete_=True,
    type='PSPHead',
    in_channels=512,
    in_index=3,
    channels=512,
    pool_scales=(1, 2, 3, 6),
    dropout_ratio=0.0,
    num_classes=21,
    norm_cfg={{_base_.norm_cfg}},
    align_corners=True,
    loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0, avg_non_ignore=True)))
