# HIAST round 2 (a stage of `hiast`, not a method on its own): lr 2e-6 (sl_2.yaml). Its own config
# because a stage's settings come from a method config.
_base_ = ['./hiast.py']
optim_wrapper = dict(segmentor=dict(optimizer=dict(lr=2e-6)))
stages = None
