# IAST's warm-up (Raykoooo/IAST warmup_at.yaml; docs/methods/hiast.md#iast 2.3): AdaptSeg's output-space
# alignment with a least-squares GAN loss on the main (final) output only, adversarial weight 0.05.
# Kept from this project's AdaptSeg: the FCDiscriminator (4x4 first layer; IAST's is 3x3), the SGD
# segmentor recipe and the discriminators' Adam 1e-4 (IAST: Adam 2e-5 for both), so that the warm-up
# differs from `adaptseg` only in the loss and its weight.
_base_ = ['./adaptseg.py']
uda_model = dict(lambda_adv=dict(_delete_=True, main=0.05), gan_loss='lsgan')
