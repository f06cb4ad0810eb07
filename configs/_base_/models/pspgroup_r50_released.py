# The group-context PSPNet-ResNet-50 as the released code computes it (docs/pss_method.md#released-vs-paper):
# the group bank built by the released reshape of the (K, B, E) values (bank_layout='released'), and the
# group computation split over the released 2-GPU nn.DataParallel in training (train_replicas=2: each
# replica's group and BN see 4 of the 8 images; eval sees the whole batch, as the single-GPU test).
_base_ = ['./pspgroup_r50.py']
model = dict(decode_head=[
    _base_.model.decode_head[0],
    dict(_base_.model.decode_head[1], bank_layout='released', train_replicas=2),
])
