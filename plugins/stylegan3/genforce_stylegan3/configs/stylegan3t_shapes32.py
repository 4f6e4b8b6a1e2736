# A tiny StyleGAN3-T on the built-in shapes dataset (`builtin:shapes32`, 32x32, written on first
# use to ~/.cache/genforce/builtin), to try the family on a CPU: 32-wide w, 2-layer mapping,
# 6 synthesis layers of at most 32 channels with a 4-pixel margin, float32 only, batch 8,
# lr 0.005, EMA half-life 2 kimg with ramp-up, R1 gamma 2. Measured on 2 CPU cores (plugin
# README): 30 kimg in 33 min reach 21 % recognised shapes, 32 % of the 96 combinations, FD 216
# (gamma 0.01: 14 %, 24 %, FD 321). A demonstration, not a benchmark.
_base_ = ['_base_/models/stylegan3t.py']
resolution = 32
batch = 8
model = dict(
    generator=dict(z_dim=32, w_dim=32, img_resolution=resolution, channel_base=1024,
                   channel_max=32, num_layers=6, margin_size=4, num_fp16_res=0, conv_clamp=None,
                   magnitude_ema_beta=0.5 ** (batch / 20000)),
    discriminator=dict(img_resolution=resolution, channel_base=1024, channel_max=32,
                       num_fp16_res=0, conv_clamp=None),
    d_reg=dict(gamma=2),
    ema=dict(half_life_kimg=2, rampup=0.05),
    blur_fade_kimg=200 * batch / 32,
)
optim_wrapper = dict(generator=dict(optimizer=dict(lr=0.005)),
                     discriminator=dict(optimizer=dict(lr=0.005)))
train_dataloader = dict(batch_size=batch, num_workers=1,
                        dataset=dict(path='builtin:shapes32', resolution=resolution))
train_cfg = dict(total_kimg=60)
