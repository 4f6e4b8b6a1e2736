# StyleGAN3-T (translation equivariant; Karras et al. 2021) as trained officially, here for
# FFHQ 1024x1024: global batch 32 on 8 GPUs (4 per GPU), 2-layer mapping, G channel base 32768
# and max 512, 3x3 convolutions, 14 synthesis layers (2 critically sampled), magnitude EMA with a
# half-life of 20 kimg, float16 (on CUDA) in the layers whose sampling rate exceeds 1/16 of
# the resolution, clamp 256; the StyleGAN2 discriminator (resnet, base 32768, max 512,
# minibatch-std group 4, fp16 in the top 4 resolutions, clamp 256); non-saturating loss, R1
# every 16 D steps (gamma 32.8 here; per dataset in the configs), no path length, no style
# mixing; Adam with betas (0, 0.99), G lr 0.0025 (no lazy-regularization rescaling: G has no
# regularization phase), D lr 0.002 (rescaled for R1 every 16 steps); EMA generator with a
# 10 kimg half-life and ramp-up 0.05; no blur of D's inputs (StyleGAN3-R blurs them); x-flips;
# 25000 kimg. As NVIDIA's train.py --cfg=stylegan3-t --batch=32 --gamma=32.8 --mirror=1
# --aug=noaug.
_base_ = ['genforce_core::_base_/gan.py']
resolution = 1024
batch = 32  # global; the dataloader's batch_size is per GPU
model = dict(
    type='StyleGAN3',
    generator=dict(
        type='StyleGAN3Generator',
        z_dim=512, c_dim=0, w_dim=512, img_resolution=resolution, img_channels=3,
        mapping_kwargs=dict(num_layers=2),
        channel_base=32768, channel_max=512, conv_kernel=3, use_radial_filters=False,
        num_fp16_res=4, conv_clamp=256, magnitude_ema_beta=0.5 ** (batch / 20000)),
    discriminator=dict(
        type='StyleGAN2Discriminator',
        c_dim=0, img_resolution=resolution, img_channels=3, architecture='resnet',
        channel_base=32768, channel_max=512, num_fp16_res=4, conv_clamp=256,
        epilogue_kwargs=dict(mbstd_group_size=4)),
    loss=dict(type='NonSaturatingLoss'),
    d_reg=dict(type='R1Penalty', gamma=32.8, interval=16),
    g_reg=None,
    style_mixing_prob=0,
    ema=dict(half_life_kimg=10 * batch / 32, rampup=0.05),
    blur_init_sigma=0,
    blur_fade_kimg=200 * batch / 32,
)
optim_wrapper = dict(
    constructor='GANOptimWrapperConstructor',
    generator=dict(optimizer=dict(type='Adam', lr=0.0025, betas=(0.0, 0.99), eps=1e-8)),
    discriminator=dict(optimizer=dict(type='Adam', lr=0.002, betas=(0.0, 0.99), eps=1e-8)),
)
train_dataloader = dict(batch_size=batch // 8,
                        dataset=dict(path='data/ffhq/ffhq1024.zip', resolution=resolution))
train_cfg = dict(type='GANTrainLoop', total_kimg=25000)
