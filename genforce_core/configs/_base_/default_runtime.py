# Runtime shared by the genforce configs: runner, hooks, logging, TensorBoard, seeding.
# Part of gan.py (the base to inherit); on its own for configs that are not GANs (encoders).
default_scope = 'genforce'
runner_type = 'GenforceRunner'

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=100),
    checkpoint=None,  # KimgCheckpointHook below: by images seen, pruned only after saving
)
custom_hooks = [
    dict(type='SampleGridHook', interval_kimg=50, num_samples=64),
    dict(type='GANProgressHook', interval=100),
    dict(type='KimgCheckpointHook', interval_kimg=200, max_keep_ckpts=5),
]
log_processor = dict(by_epoch=False, window_size=100)
visualizer = dict(type='Visualizer', vis_backends=[dict(type='LocalVisBackend'),
                                                   dict(type='TensorboardVisBackend')])
env_cfg = dict(cudnn_benchmark=True, dist_cfg=dict(backend='nccl'))
# Each rank draws its own latents (NVIDIA seeds seed * num_gpus + rank).
randomness = dict(seed=0, diff_rank_seed=True)
log_level = 'INFO'
load_from = None
resume = False
