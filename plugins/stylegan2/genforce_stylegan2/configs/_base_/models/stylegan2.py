# StyleGAN2 config F as in NVIDIA's StyleGAN2-ADA code (cfg 'stylegan2'): 8-layer mapping,
# skip generator, resnet discriminator, fp16 in the top 4 resolutions with conv clamp 256,
# non-saturating loss, R1 every 16 D steps, path length (weight 2) every 4 G steps, style
# mixing 0.9, Adam(0.002, betas (0, 0.99)) rescaled for lazy regularization, EMA 10 kimg.
# On top of the core's GAN base (runtime, shuffled resumable sampler, kimg loop, hooks).
_base_ = ['genforce_core::_base_/gan.py']
model = dict(
    type='StyleGAN2',
    generator=dict(
        type='StyleGAN2Generator',
        z_dim=512, c_dim=0, w_dim=512, img_resolution=1024, img_channels=3,
        mapping_kwargs=dict(num_layers=8),
        synthesis_kwargs=dict(channel_base=32768, channel_max=512, num_fp16_res=4,
                              conv_clamp=256, architecture='skip')),
    discriminator=dict(
        type='StyleGAN2Discriminator',
        c_dim=0, img_resolution=1024, img_channels=3, architecture='resnet',
        channel_base=32768, channel_max=512, num_fp16_res=4, conv_clamp=256,
        epilogue_kwargs=dict(mbstd_group_size=4)),
    loss=dict(type='NonSaturatingLoss'),
    d_reg=dict(type='R1Penalty', gamma=10, interval=16),
    g_reg=dict(type='PathLengthPenalty', weight=2, decay=0.01, batch_shrink=2, interval=4),
    style_mixing_prob=0.9,
    ema=dict(half_life_kimg=10, rampup=None),
)
optim_wrapper = dict(
    constructor='GANOptimWrapperConstructor',
    generator=dict(optimizer=dict(type='Adam', lr=0.002, betas=(0.0, 0.99), eps=1e-8)),
    discriminator=dict(optimizer=dict(type='Adam', lr=0.002, betas=(0.0, 0.99), eps=1e-8)),
)
train_cfg = dict(type='GANTrainLoop', total_kimg=25000)
