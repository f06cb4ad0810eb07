# adaptseg_lsgan (_base_/uda/adaptseg_lsgan.py) on PSPNet-VGG-16 (_base_/models/pspnet_vgg16.py).
_base_ = ['../_base_/models/pspnet_vgg16.py', '../_base_/uda/adaptseg_lsgan.py']
model = dict(_base_.uda_model, _delete_=True, segmentor=_base_.model, data_preprocessor=dict(
    _base_.data_preprocessor, type='PairedSegDataPreProcessor', size=_base_.crop_size))
