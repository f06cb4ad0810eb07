# MinEnt (Vu et al., CVPR 2019): source CE + entropy minimisation of the target main/aux outputs.
# lambda_ent main 1e-3 / aux 2e-4: ADVENT's LAMBDA_ENT_MAIN/AUX (docs/methods/baselines.md#advent).
# The rest as source_only.py (the released PSS recipe).
_base_ = ['../datasets/pss_uda.py', '../default_runtime.py', '../schedules/pss_poly_120k.py']
uda_model = dict(type='MinEnt', lambda_ent=dict(main=1e-3, aux=2e-4))
