# FDA with beta 0.01 (one of FDA-MBT's three bands); everything else as fda.py.
_base_ = ['./fda.py']
uda_model = dict(betas=(0.01,))
