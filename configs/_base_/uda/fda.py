# FDA (Yang & Soatto, CVPR 2020; baselines/fda.py, baselines/spectral.py): source CE (main + 0.4 aux)
# on source crops restyled with the target's low-frequency amplitude (relative beta: window half-size
# b = floor(beta * min(H, W)), on raw 0-255 crops of equal size), + 0.005 * robust entropy (eta 2,
# normalised by ln 21) on the target from ent_start_iter on. Released: --LB 0.01/0.05/0.09,
# --entW 0.005, --ita 2.0, --switch2entropy 50000 of a 100k-iteration run; here 0 (the README's
# example), since the suite's runs are per user and short. Optimisation: the suite's.
_base_ = ['../datasets/pss_uda.py', '../default_runtime.py', '../schedules/pss_poly_120k.py']
uda_model = dict(type='FDA', betas=(0.09,), lambda_ent=0.005, eta=2.0, ent_start_iter=0)
