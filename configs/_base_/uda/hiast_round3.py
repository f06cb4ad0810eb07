# HIAST round 3 (a stage of `hiast`, not a method on its own): lr 1e-6 (sl_3.yaml).
_base_ = ['./hiast.py']
optim_wrapper = dict(segmentor=dict(optimizer=dict(lr=1e-6)))
stages = None
