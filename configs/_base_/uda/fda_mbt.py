# FDA-MBT + self-supervised round (README, getSudoLabel_multi.py, SStrain.py): three single-beta FDA
# models -> mean softmax -> per-class pseudo labels (keep a pixel when its confidence reaches
# min(0.9, the 66th percentile of its class's confidences over the user's album), else 255) -> the
# SSL round: source CE + pseudo-label CE + robust entropy on the pseudo-labelled photos (from step 0),
# three members (one per beta) trained from the ImageNet weights as released (SStrain.py
# --init-weights) on the same batches -> prediction = the mean of the members' softmaxes.
_base_ = ['./fda.py']
uda_model = dict(betas=(0.01, 0.05, 0.09), lambda_pseudo=1.0, ent_start_iter=0)
train_dataloader = dict(dataset=dict(pseudo=dict(
    type='PseudoLabelDataset', data_root=_base_.data_root, pseudo_dir='', users=[1],
    pipeline=_base_.source_pipeline)))
stages = [
    dict(name='b001', type='train', method='fda', cfg_options={'model.betas': (0.01,)}),
    dict(name='b005', type='train', method='fda', cfg_options={'model.betas': (0.05,)}),
    dict(name='b009', type='train', method='fda'),
    dict(name='pseudo', type='pseudo_labels', models=['b001', 'b005', 'b009'], labeller='fda_mbt',
         percentile=0.66, cap=0.9),
    dict(name='ssl', type='train', pseudo_labels='pseudo'),
]
