# OURS-S1 as the released code runs it (docs/pss_method.md#released-vs-paper); with the segmentor bases
# models/pspgroup_*_released.py (released bank layout, DataParallel split, VGG cut before conv4_3's ReLU).
# Here: VOC source batches drawn from the released K = 500 grouping (`pss-bench data cluster ROOT --k
# 500 --source` first; on PSS-Synth the source stays ungrouped, with a warning), and the group
# inference resized as the released group_collect (sum-of-sizes aspect, int truncation, PIL bicubic).
_base_ = ['./pss_s1.py']
train_dataloader = dict(dataset=dict(source=dict(cluster_k=500)))
group_inference = dict(resize='released')
