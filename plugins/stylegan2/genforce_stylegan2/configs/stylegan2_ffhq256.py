# StyleGAN2 at 256x256 with the StyleGAN2-ADA paper's baseline settings (cfg 'paper256'):
# global batch 64 on 8 GPUs (8 per GPU), half the channels (channel base 16384), minibatch-std
# group 8, lr 0.0025, gamma 1, EMA 20 kimg, 8-layer mapping.
_base_ = ['_base_/models/stylegan2.py']
resolution = 256
model = dict(
    generator=dict(img_resolution=resolution, synthesis_kwargs=dict(channel_base=16384)),
    discriminator=dict(img_resolution=resolution, channel_base=16384,
                       epilogue_kwargs=dict(mbstd_group_size=8)),
    d_reg=dict(gamma=1),
    ema=dict(half_life_kimg=20),
)
optim_wrapper = dict(generator=dict(optimizer=dict(lr=0.0025)),
                     discriminator=dict(optimizer=dict(lr=0.0025)))
train_dataloader = dict(batch_size=8,
                        dataset=dict(path='data/ffhq/ffhq256.zip', resolution=resolution))
