# IAST round 2 (a stage of `iast`, not a method on its own): lr 2.5e-5 (sl_2.yaml). Its own config
# because a stage's settings come from a method config.
_base_ = ['./iast.py']
optim_wrapper = dict(segmentor=dict(optimizer=dict(lr=2.5e-5)))
stages = None
