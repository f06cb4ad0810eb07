# IAST round 3 (a stage of `iast`, not a method on its own): lr 2e-5 (sl_3.yaml).
_base_ = ['./iast.py']
optim_wrapper = dict(segmentor=dict(optimizer=dict(lr=2e-5)))
stages = None
