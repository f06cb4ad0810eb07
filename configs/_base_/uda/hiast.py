# HIAST (TPAMI 2025; bupt-ai-cz/HIAST; docs/methods/hiast.md#hiast): AdaptSeg warm-up, then three
# target-only rounds: IAS pseudo labels (alpha 0.5 every round; rounds 2-3 labelled by the previous
# round's EMA teacher), hard-aware copy-paste of one donor's hard-class pixels before augmentation, and
# CE + 0.1 KLD (labelled) + 1.0 entropy (unlabelled) + 0.5 soft-CE to an EMA teacher (0.999) on the
# unlabelled pixels, student on a strong colour view (baselines/hiast.py::HIAST).
_base_ = ['./iast.py']
uda_model = dict(type='HIAST', lambda_ent=1.0, lambda_consistency=0.5, ema_momentum=0.999)
# Hard classes: the released 14 of 19 classes becomes 15 of 21 (round(14 / 19 * 21) = 15), background
# excluded; the smallest 10 % of each class's donors are dropped.
train_dataloader = dict(dataset=dict(copy_paste=dict(_delete_=True, num_hard=15, drop_smallest=0.1)))
# Adam, heads at lr x 10 (get_optimizer_params), round 1 lr 3e-6 (rounds 2/3: 2e-6 / 1e-6).
optim_wrapper = dict(segmentor=dict(
    optimizer=dict(lr=3e-6),
    paramwise_cfg=dict(_delete_=True, custom_keys={'decode_head': dict(lr_mult=10.0),
                                                    'auxiliary_head': dict(lr_mult=10.0)})))
# HIAST runs 8000 iterations per round, batch 6; here the preset's iterations (pass --iters 8000 on the
# paper preset).
stages = [
    dict(name='warmup', type='train', method='adaptseg'),
    dict(name='pseudo1', type='pseudo_labels', model='warmup', labeller='ias', alpha=0.5),
    dict(name='round1', type='train', init_from='warmup', pseudo_labels='pseudo1'),
    dict(name='pseudo2', type='pseudo_labels', model='round1', labeller='ias', alpha=0.5, teacher=True),
    dict(name='round2', type='train', init_from='round1', pseudo_labels='pseudo2',
         cfg_options={'optim_wrapper.segmentor.optimizer.lr': 2e-6}),
    dict(name='pseudo3', type='pseudo_labels', model='round2', labeller='ias', alpha=0.5, teacher=True),
    dict(name='round3', type='train', init_from='round2', pseudo_labels='pseudo3',
         cfg_options={'optim_wrapper.segmentor.optimizer.lr': 1e-6}),
]
