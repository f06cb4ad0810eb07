# pspnet_r50.py with MMSegmentation's own PSPHead instead of the released one: every pyramid branch
# `channels` (512) wide, branch up-sampling with the head's align_corners (True), classifier with a
# bias. The baselines' head before issue 13; kept, named, for comparison with earlier records.
_base_ = ['./pspnet_r50.py']
model = dict(decode_head=dict(
    _delete_=True,
    type='PSPHead',
    in_channels=2048,
    in_index=3,
    channels=512,
    pool_scales=(1, 2, 3, 6),
    dropout_ratio=0.0,
    num_classes=21,
    norm_cfg={{_base_.norm_cfg}},
    align_corners=True,
    loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0, avg_non_ignore=True)))
