# The released single-level AdvEnt baseline (zhangyuygss/PSS advent/scripts/configs/advent_ent.yml:
# DA_METHOD AdvEnt, MULTI_LEVEL False, AUXFORADV False, LAMBDA_ADV_MAIN 0.001): one discriminator on
# the main output's self-information map, and no aux output (the leaves drop the auxiliary head, so
# there is no aux CE either). Kept from advent.py (the project recipe) rather than the yml: batch 8 and
# 320 crops (the yml's batch 6, 500x400 / 640x480 inputs and K = 40 / 200 lists belong to an earlier
# experiment; its group flags are off, as here), SGD 2.5e-3 wd 5e-4, the 120k-of-250k poly schedule.
_base_ = ['./advent.py']
uda_model = dict(lambda_adv=dict(_delete_=True, main=1e-3))
