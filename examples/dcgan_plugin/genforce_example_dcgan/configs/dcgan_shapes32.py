# DCGAN on a 32x32 image dataset, trained by the genforce core engine.
#   genforce train $(python -c "import genforce_example_dcgan as m; print(m.CONFIG_DIR)")/dcgan_shapes32.py \
#       --cfg-options train_dataloader.dataset.path=PATH_TO_DATASET
default_scope = 'genforce'
runner_type = 'GenforceRunner'
resolution = 32
batch_size = 32  # per GPU / process

model = dict(
    type='GAN',
    generator=dict(type='DCGANGenerator', z_dim=64, resolution=resolution, base_channels=32),
    discriminator=dict(type='DCGANDiscriminator', resolution=resolution, base_channels=32),
    loss=dict(type='NonSaturatingLoss'),
    ema=dict(half_life_kimg=2, rampup=0.05),
)

train_dataloader = dict(
    batch_size=batch_size,
    num_workers=0,
    sampler=dict(type='ResumableInfiniteSampler', shuffle=True),
    dataset=dict(type='ImageDataset', path='builtin:shapes32', resolution=resolution),
    collate_fn=dict(type='default_collate'),
)

optim_wrapper = dict(
    constructor='GANOptimWrapperConstructor',
    # The DCGAN paper's Adam settings. (StyleGAN's 0.002 / (0, 0.99) suits equalized-lr networks;
    # with PyTorch's default initialisation it collapses this model's colours.)
    generator=dict(optimizer=dict(type='Adam', lr=0.0002, betas=(0.5, 0.999))),
    discriminator=dict(optimizer=dict(type='Adam', lr=0.0002, betas=(0.5, 0.999))),
)

train_cfg = dict(type='GANTrainLoop', total_kimg=50)

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=None,
)
custom_hooks = [
    dict(type='SampleGridHook', interval_kimg=10, num_samples=64),
    dict(type='GANProgressHook', interval=50),
    dict(type='KimgCheckpointHook', interval_kimg=25, max_keep_ckpts=3),
]
log_processor = dict(by_epoch=False, window_size=10)
visualizer = dict(type='Visualizer', vis_backends=[dict(type='LocalVisBackend'),
                                                   dict(type='TensorboardVisBackend')])
env_cfg = dict(cudnn_benchmark=True, dist_cfg=dict(backend='nccl'))
randomness = dict(seed=0, diff_rank_seed=True)
log_level = 'INFO'
load_from = None
resume = False
