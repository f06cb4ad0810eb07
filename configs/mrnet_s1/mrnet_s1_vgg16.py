# MRNet stage 1 (_base_/uda/mrnet_s1.py) on MRNet's heads on VGG-16 (_base_/models/mrnet_vgg16.py).
_base_ = ['../_base_/models/mrnet_vgg16.py', '../_base_/uda/mrnet_s1.py']
model = dict(_base_.uda_model, _delete_=True, segmentor=_base_.model, data_preprocessor=dict(
    _base_.data_preprocessor, type='PairedSegDataPreProcessor', size=_base_.crop_size))
