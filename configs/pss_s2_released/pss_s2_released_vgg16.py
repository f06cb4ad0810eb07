# OURS-S2 as released (_base_/uda/pss_s2_released.py) on the
# released group-context network (_base_/models/pspgroup_vgg16_released.py).
_base_ = ['../_base_/models/pspgroup_vgg16_released.py', '../_base_/uda/pss_s2_released.py']
model = dict(_base_.uda_model, _delete_=True, segmentor=_base_.model, data_preprocessor=dict(
    _base_.data_preprocessor, type='PairedSegDataPreProcessor', size=_base_.crop_size))
