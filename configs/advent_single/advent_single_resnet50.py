# Single-level ADVENT as released (_base_/uda/advent_single.py) on the baselines' network
# (_base_/models/pspnet_r50.py) without its auxiliary head.
_base_ = ['../_base_/models/pspnet_r50.py', '../_base_/uda/advent_single.py']
model = dict(_base_.uda_model, _delete_=True, segmentor=dict(_base_.model, auxiliary_head=None),
             data_preprocessor=dict(_base_.data_preprocessor, type='PairedSegDataPreProcessor',
                                    size=_base_.crop_size))
