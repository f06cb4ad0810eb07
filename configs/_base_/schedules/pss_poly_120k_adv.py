# Two optimisers for the adversarial methods: the segmentor as in pss_poly_120k.py, and the
# discriminators with Adam lr 1e-4, betas (0.9, 0.99), no weight decay, on the same poly-0.9 decay
# against 250k iterations (ADVENT / released PSS code: LEARNING_RATE_D; docs/methods/baselines.md#recipe
# and #advent).
# MultiOptimWrapperConstructor (baselines/optim.py) builds one OptimWrapper per submodule of the model
# (`model.segmentor`, `model.discriminator`); MMEngine keys param_scheduler the same way, so each
# optimiser gets its own PolyLR and checkpoints carry both optimiser states.
_base_ = ['./pss_poly_120k.py']
optim_wrapper = dict(
    _delete_=True,
    constructor='MultiOptimWrapperConstructor',
    segmentor=dict(
        type='OptimWrapper',
        optimizer=dict(type='SGD', lr=2.5e-3, momentum=0.9, weight_decay=5e-4),
        clip_grad=None),
    discriminator=dict(
        type='OptimWrapper',
        optimizer=dict(type='Adam', lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0),
        clip_grad=None))
param_scheduler = dict(
    _delete_=True,
    segmentor=[dict(type='PolyLR', power=0.9, eta_min=0.0, begin=0, end=250001, by_epoch=False)],
    discriminator=[dict(type='PolyLR', power=0.9, eta_min=0.0, begin=0, end=250001, by_epoch=False)])
