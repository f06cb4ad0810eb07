# PSS step 1 (OURS-S1, paper sections 4.1-4.2): AdvEnt on main and aux outputs + the group context
# module between the PSP output and the classifier (the segmentor base: models/pspgroup_*.py). Every
# target batch is one group of the user's photos (train_cluster80.txt, K = 80); source batches are
# grouped too when the VOC list is clustered (the released code: VOC K = 500 -> `pss-bench data cluster
# ROOT --k 500 --source`, then --cfg-options train_dataloader.dataset.source.cluster_k=500), otherwise
# random. Weights and schedule as advent.py (docs/methods/released_pss.md).
_base_ = ['./advent.py']
train_dataloader = dict(
    batch_sampler=dict(type='GroupBatchSampler', group_target=True, group_source=True))
# Inference in batches of one group (the group module needs its batch-mates): pss_bench.inference
# predicts every photo of the user in deterministic group batches of this size, resized to a common
# size (short side 1.5 x crop, batch-average aspect ratio, as the released group_collect).
group_inference = dict(batch_size=8, seed=1)
