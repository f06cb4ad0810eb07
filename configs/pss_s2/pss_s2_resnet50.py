# PSS step 2 (OURS-S2, paper section 4.3): everything of step 1, plus, every second iteration, CE
# (main + 0.4 aux) on a group batch of pseudo-labelled target photos with weight 1
# (research/methods-pss-hiast.md 1.6). Pseudo labels = full arg-max maps of the lowest-entropy
# fraction of the user's photos under the step-1 model (one mean-normalised-entropy score per photo).
# `pss-bench run --method pss_s2` trains step 1 (or reuses a finished one), writes the pseudo labels
# into the work directory, then trains this config.
_base_ = ['../pss_s1/pss_s1_resnet50.py']
model = dict(type='PseudoLabelAdvEnt', lambda_pseudo=1.0, pseudo_interval=2)
train_dataloader = dict(dataset=dict(pseudo=dict(
    type='PseudoLabelDataset', data_root=_base_.data_root, pseudo_dir='', users=[1],
    pipeline=_base_.source_pipeline)))  # the released train_supervised augmentation = the source's
pseudo_label = dict(
    ratio=0.6,  # released eval_UDA.py (hard-coded 0.6); the paper's text says r = 0.5
    # 'step1': fine-tune from the step-1 model (the paper's description). 'imagenet': start again from
    # the ImageNet weights, as the released train.py actually does for the psp model.
    init='step1')
