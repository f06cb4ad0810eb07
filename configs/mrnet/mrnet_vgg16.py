# MRNet stage 2 (rectified) (_base_/uda/mrnet.py) on MRNet's heads on VGG-16 (_base_/models/mrnet_vgg16.py).
_base_ = ['../_base_/models/mrnet_vgg16.py', '../_base_/uda/mrnet.py']
model = dict(_base_.uda_model, _delete_=True, segmentor=_base_.model, data_preprocessor=dict(
    _base_.data_preprocessor, type='PairedSegDataPreProcessor', size=_base_.crop_size))
model['segmentor']['decode_head']['dropout_ratio'] = _base_.head_dropout  # stage 2: 0.2
model['segmentor']['auxiliary_head']['dropout_ratio'] = _base_.head_dropout
