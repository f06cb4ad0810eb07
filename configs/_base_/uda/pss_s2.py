# PSS step 2 (OURS-S2, paper section 4.3): everything of step 1, plus, every second iteration, CE
# (main + 0.4 aux) on a group batch of pseudo-labelled target photos with weight 1
# (docs/methods/released_pss.md). Pseudo labels = full arg-max maps of the lowest-entropy fraction of
# the user's photos under the step-1 model (one mean-normalised-entropy score per photo).
_base_ = ['./pss_s1.py']
uda_model = dict(type='PseudoLabelAdvEnt', lambda_pseudo=1.0, pseudo_interval=2)
train_dataloader = dict(dataset=dict(pseudo=dict(
    type='PseudoLabelDataset', data_root=_base_.data_root, pseudo_dir='', users=[1],
    pipeline=_base_.source_pipeline)))  # the released train_supervised augmentation = the source's
# The stages `pss-bench run` runs per user (pss_bench/harness/stages.py), each in WORK/id<k>/<name>/,
# each resumable; a finished stage is reused. --cfg-options reach every training stage, or one with a
# prefix (s1.model.lambda_adv.main=...).
stages = [
    # step 1: the pss_s1 method with the same backbone
    dict(name='s1', type='train', method='pss_s1'),
    # ratio 0.6: the released eval_UDA.py (hard-coded); the paper's text says r = 0.5
    dict(name='pseudo', type='pseudo_labels', model='s1', labeller='entropy_ranking', ratio=0.6),
    # this config. init_from='s1' fine-tunes the step-1 model (the paper's description); None starts
    # again from the ImageNet weights, as the released train.py actually does for the psp model.
    dict(name='s2', type='train', init_from='s1', pseudo_labels='pseudo'),
]
