# StyleGAN on FFHQ 1024x1024 with the official settings (NVlabs/stylegan train.py, 8 GPUs; the
# original GenForce uses the same): progressive growing from 8x8, 600 kimg per level and per
# fade-in; global minibatch 512/256/128/64/32 at 4..64 and 32 above (per GPU below: /8);
# lr 0.001, and 0.0015/0.002/0.003/0.003 at 128/256/512/1024 for both networks; Adam
# betas (0, 0.99), eps 1e-8, state reset at each new level; non-saturating loss with R1
# (gamma 10) in every D step; style mixing 0.9; w_avg beta 0.995; truncation cutoff 8; G EMA
# with a 10 kimg half-life; x-flips; 25000 kimg.
_base_ = ['genforce_core::_base_/gan.py']
resolution = 1024
model = dict(
    type='StyleGAN',
    generator=dict(
        type='StyleGANGenerator', z_dim=512, c_dim=0, w_dim=512, img_resolution=resolution,
        img_channels=3,
        mapping_kwargs=dict(num_layers=8, layer_features=512, lr_multiplier=0.01,
                            w_avg_beta=0.995, truncation_cutoff=8),
        synthesis_kwargs=dict(fmap_base=8192, fmap_max=512, blur_taps=(1, 2, 1))),
    discriminator=dict(
        type='StyleGANDiscriminator', c_dim=0, img_resolution=resolution, img_channels=3,
        fmap_base=8192, fmap_max=512, mbstd_group_size=4, mbstd_num_features=1,
        blur_taps=(1, 2, 1)),
    loss=dict(type='NonSaturatingLoss'),
    r1=dict(type='R1Penalty', gamma=10.0, interval=1),
    style_mixing_prob=0.9,
    data_preprocessor=dict(type='ProgressiveDataPreprocessor'),
    ema=dict(half_life_kimg=10, rampup=None),
)
optim_wrapper = dict(
    constructor='GANOptimWrapperConstructor',
    generator=dict(optimizer=dict(type='Adam', lr=0.001, betas=(0.0, 0.99), eps=1e-8)),
    discriminator=dict(optimizer=dict(type='Adam', lr=0.001, betas=(0.0, 0.99), eps=1e-8)),
)
train_dataloader = dict(batch_size=4, dataset=dict(path='data/ffhq/ffhq1024.zip',
                                                   resolution=resolution, xflip=True))
train_cfg = dict(type='GANTrainLoop', total_kimg=25000)
lr_by_resolution = {128: 0.0015, 256: 0.002, 512: 0.003, 1024: 0.003}
custom_hooks = [
    dict(type='ProgressiveGrowingHook', start_resolution=8, training_kimg=600,
         transition_kimg=600, batch_size={4: 64, 8: 32, 16: 16, 32: 8, 64: 4},
         lr=dict(generator=lr_by_resolution, discriminator=lr_by_resolution),
         reset_optimizers=True),
    dict(type='SampleGridHook', interval_kimg=100, num_samples=64),
    dict(type='GANProgressHook', interval=100),
    dict(type='KimgCheckpointHook', interval_kimg=500, max_keep_ckpts=5),
]
