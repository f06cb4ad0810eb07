# The group-context PSPNet-VGG-16 as the released code computes it: pspgroup_r50_released.py's head
# (released bank layout, 2-replica DataParallel split in training) on the released VGG encoder, which
# stops at conv4_3's BN, before its ReLU (final_relu=False, pss_bench/models/vgg.py).
_base_ = ['./pspgroup_vgg16.py']
model = dict(
    backbone=dict(final_relu=False),
    decode_head=[
        _base_.model.decode_head[0],
        dict(_base_.model.decode_head[1], bank_layout='released', train_replicas=2),
    ])
