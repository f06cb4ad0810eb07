# OURS-S2 as the released code runs it (docs/pss_method.md#released-vs-paper): pss_s2.py with the
# settings of pss_s1_released.py (VOC K = 500 source grouping, released group-inference resizing),
# plus the released pseudo stream (one pass over the easy photos, then source batches with their true
# labels: PseudoStreamBatchSampler(pseudo_stream='released')) and the released initialisation of step 2
# from the ImageNet weights (init_from=None; the step-1 model only ranks and labels the photos).
_base_ = ['./pss_s2.py']
train_dataloader = dict(
    batch_sampler=dict(type='PseudoStreamBatchSampler', pseudo_stream='released'),
    dataset=dict(source=dict(cluster_k=500)))
group_inference = dict(resize='released')
stages = [
    dict(name='s1', type='train', method='pss_s1_released'),
    dict(name='pseudo', type='pseudo_labels', model='s1', ratio=0.6),  # released eval_UDA.py: 0.6
    dict(name='s2', type='train', init_from=None, pseudo_labels='pseudo'),
]
