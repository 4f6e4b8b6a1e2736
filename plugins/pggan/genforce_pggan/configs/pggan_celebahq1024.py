# PGGAN on CelebA-HQ 1024x1024 with the paper's schedule (Karras et al. 2018, appendix A.1):
# start at 4x4, 800 kimg per level, then alternately fade in the next level over 800 kimg and
# stabilise it for 800 kimg; minibatch 16 up to 128x128, then 14 / 6 / 3 at 256 / 512 / 1024;
# Adam(0.001, betas (0, 0.99), eps 1e-8), optimizer state reset at each new level; WGAN-GP
# (gamma 10, target 1) with drift 0.001; minibatch stddev (group 16); generator EMA 0.999 per
# step; x-flips. Batch sizes are per GPU: these are the paper's single-GPU values.
_base_ = ['genforce_core::_base_/gan.py']
resolution = 1024
model = dict(
    type='PGGAN',
    generator=dict(type='PGGANGenerator', z_dim=512, c_dim=0, img_resolution=resolution,
                   img_channels=3, fmap_base=8192, fmap_max=512),
    discriminator=dict(type='PGGANDiscriminator', c_dim=0, img_resolution=resolution,
                       img_channels=3, fmap_base=8192, fmap_max=512, mbstd_group_size=16),
    loss=dict(type='WGANGPLoss', gamma=10.0, target=1.0, drift=0.001),
    data_preprocessor=dict(type='ProgressiveDataPreprocessor'),
    ema_beta=0.999,
)
optim_wrapper = dict(
    constructor='GANOptimWrapperConstructor',
    generator=dict(optimizer=dict(type='Adam', lr=0.001, betas=(0.0, 0.99), eps=1e-8)),
    discriminator=dict(optimizer=dict(type='Adam', lr=0.001, betas=(0.0, 0.99), eps=1e-8)),
)
train_dataloader = dict(batch_size=16, dataset=dict(path='data/celebahq/celebahq1024.zip',
                                                    resolution=resolution, xflip=True))
# 800 kimg at 4x4 + 8 levels x 1600 kimg reach 1024x1024 at 12800 kimg; then it stabilises.
train_cfg = dict(type='GANTrainLoop', total_kimg=19000)
custom_hooks = [
    dict(type='ProgressiveGrowingHook', start_resolution=4, training_kimg=800,
         transition_kimg=800, batch_size={256: 14, 512: 6, 1024: 3}, reset_optimizers=True),
    dict(type='SampleGridHook', interval_kimg=100, num_samples=64),
    dict(type='GANProgressHook', interval=100),
    dict(type='KimgCheckpointHook', interval_kimg=500, max_keep_ckpts=5),
]
