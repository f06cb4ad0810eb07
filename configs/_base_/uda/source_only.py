# No-DA (source only): supervised CE on VOC crops, CE(main) + 0.4 CE(aux), no target term.
# Defaults follow the released PSS code (docs/methods/released_pss.md): aux CE weight 0.4 (ADVENT and
# AdaptSeg use 0.1), batch 8, 320x320 crops with 0.5-2x scale jitter and flip, SGD lr 2.5e-3 wd 5e-4
# (the paper text: 2.5e-4 / 1e-4), poly 0.9 against 250k, stop at 120k.
# A leaf config wraps a segmentor base with this: model = dict(uda_model, segmentor=<segmentor>, ...).
_base_ = ['../datasets/pss_uda.py', '../default_runtime.py', '../schedules/pss_poly_120k.py']
uda_model = dict(type='SourceOnly')
