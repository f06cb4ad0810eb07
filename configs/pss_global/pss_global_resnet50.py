# Ablation "Global" (paper Table 3): pixels attend to one global bank of class representations shared
# by all images (a running average of the per-class region features) instead of their batch's group.
_base_ = ['../pss_s1/pss_s1_resnet50.py']
model = dict(segmentor=dict(decode_head=[
    _base_.model.segmentor.decode_head[0],
    dict(_base_.model.segmentor.decode_head[1], context='global'),
]))
