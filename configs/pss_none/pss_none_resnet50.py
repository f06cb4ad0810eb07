# Ablation "None" (paper Table 3): the OURS-S1 recipe (group batches, AdvEnt) with no context module:
# the classifier sits directly on the PSP output (the released group=False path).
_base_ = ['../pss_s1/pss_s1_resnet50.py']
model = dict(segmentor=dict(decode_head=[
    _base_.model.segmentor.decode_head[0],
    dict(_base_.model.segmentor.decode_head[1], context='none'),
]))
