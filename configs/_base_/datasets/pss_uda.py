# VOC-aug (labelled source) -> one PSS user's album (unlabelled target), MMSegmentation 1.x style.
# The harness (`pss-bench run`) sets data_root, the user(s) and the preset's sizes; these defaults are
# the released PSS code's values (docs/methods/released_pss.md#schedule): long side resized to a random
# size in [0.5, 2] x 320 (bicubic images, nearest labels), random 320x320 crop, horizontal flip, no
# colour jitter; batch 8 for both domains; test images resized to a short side of 480 (1.5 x crop).
data_root = 'data/pss'
crop_size = (320, 320)
test_scale = (2048, 480)  # (long max, short) with keep_ratio: the short side becomes 480

source_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomResize', scale=crop_size, ratio_range=(0.5, 2.0), keep_ratio=True,
         interpolation='bicubic'),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
# Same geometry for the target, and no LoadAnnotations: target labels are never read for training.
target_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResize', scale=crop_size, ratio_range=(0.5, 2.0), keep_ratio=True,
         interpolation='bicubic'),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs', meta_keys=('img_path', 'ori_shape', 'img_shape', 'pad_shape',
                                          'scale_factor', 'flip', 'flip_direction', 'user', 'group',
                                          'stem')),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=test_scale, keep_ratio=True, interpolation='bicubic'),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs', meta_keys=('img_path', 'seg_map_path', 'ori_shape', 'img_shape',
                                          'pad_shape', 'scale_factor', 'flip', 'flip_direction',
                                          'user', 'group', 'stem')),
]

train_dataloader = dict(
    batch_size=8,
    num_workers=2,
    persistent_workers=True,
    # The infinite sampler only hands the dataset and the seed to the batch sampler, which decides
    # every batch (one target group per batch; see pss_bench/datasets/sampler.py).
    sampler=dict(type='InfiniteSampler', shuffle=True),
    batch_sampler=dict(type='GroupBatchSampler', group_target=False, group_source=False),
    dataset=dict(
        type='UDAPairDataset',
        source=dict(type='VOCAugDataset', data_root=data_root, pipeline=source_pipeline),
        target=dict(type='PSSDataset', data_root=data_root, users=[1], split='train',
                    pipeline=target_pipeline),
    ),
)
val_dataloader = dict(
    batch_size=1,
    num_workers=1,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='PSSDataset', data_root=data_root, users=[1], split='val',
                 pipeline=test_pipeline),
)
test_dataloader = val_dataloader
val_evaluator = dict(type='PSSMetric')
test_evaluator = val_evaluator
