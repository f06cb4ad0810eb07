# hiast (_base_/uda/hiast.py) on PSPNet-ResNet-50 (_base_/models/pspnet_r50.py).
_base_ = ['../_base_/models/pspnet_r50.py', '../_base_/uda/hiast.py']
model = dict(_base_.uda_model, _delete_=True, segmentor=_base_.model, data_preprocessor=dict(
    _base_.data_preprocessor, type='PairedSegDataPreProcessor', size=_base_.crop_size))
