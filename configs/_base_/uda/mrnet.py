# MRNet stage 2 (IJCV 2021, rectified pseudo labels): stage 1 (mrnet_s1) -> pseudo labels = arg-max of
# the mean softmax(main + 0.5 aux) over scales {1, 1.25} x {identity, flip}, softmax at stride 8 then
# up-sampled as released (generate_plabel_cityscapes.py 175-188), every pixel labelled ->
# fine-tune the stage-1 model with E[exp(-KL) * CE + KL] on the pseudo-labelled photos (main + 0.5
# aux, class-balanced) plus the class-balanced source CE (the paper keeps VOC supervision for small
# target sets; released stage 2 trains on the target only: lambda_source=0). Dropout 0.2 in both heads.
_base_ = ['./mrnet_s1.py']
uda_model = dict(_delete_=True, type='MRNetRectified', lambda_source=1.0, lambda_aux=0.5,
                 class_balance=True, often_balance=True, max_weight=7.0, small_class_fraction=1 / 128,
                 hard_percentile=80.0)
# Released stage-2 rates (trainer_ms_variance.py): Nesterov SGD 1e-4, heads x 10 (see mrnet_s1.py).
optim_wrapper = dict(_delete_=True, type='OptimWrapper',
                     optimizer=dict(type='SGD', lr=1e-4, momentum=0.9, weight_decay=5e-4, nesterov=True),
                     paramwise_cfg=dict(custom_keys={'decode_head': dict(lr_mult=10.0),
                                                     'auxiliary_head': dict(lr_mult=10.0)}),
                     clip_grad=None)
param_scheduler = [dict(type='PolyLR', power=0.9, eta_min=0.0, begin=0, end=250001, by_epoch=False)]
train_dataloader = dict(dataset=dict(pseudo=dict(
    type='PseudoLabelDataset', data_root=_base_.data_root, pseudo_dir='', users=[1],
    pipeline=_base_.source_pipeline)))
head_dropout = 0.2
stages = [
    dict(name='s1', type='train', method='mrnet_s1'),
    dict(name='pseudo', type='pseudo_labels', model='s1', labeller='mrnet_tta', scales=(1.0, 1.25), flip=True,
         softmax_before_resize=True),
    dict(name='s2', type='train', init_from='s1', pseudo_labels='pseudo'),
]
