# Conditional StyleGAN3-T on CIFAR-10 32x32 (not an official StyleGAN3 setting: the StyleGAN2-ADA
# paper's CIFAR-10 choices on the StyleGAN3-T base): global batch 64 on 2 GPUs (32 per GPU),
# minibatch-std group 32, G channel base 16384, gamma 0.01, EMA 500 kimg with ramp-up 0.05,
# 'orig' discriminator, x-flips, 100000 kimg.
#   genforce prepare-dataset cifar10_png/ data/cifar10/cifar10.zip --labels labels.json
_base_ = ['_base_/models/stylegan3t.py']
resolution = 32
num_classes = 10
batch = 64
model = dict(
    generator=dict(c_dim=num_classes, img_resolution=resolution, channel_base=16384,
                   magnitude_ema_beta=0.5 ** (batch / 20000)),
    discriminator=dict(c_dim=num_classes, img_resolution=resolution, architecture='orig',
                       epilogue_kwargs=dict(mbstd_group_size=32)),
    d_reg=dict(gamma=0.01),
    ema=dict(half_life_kimg=500, rampup=0.05),
)
train_dataloader = dict(batch_size=batch // 2, dataset=dict(
    path='data/cifar10/cifar10.zip', resolution=resolution, use_labels=True))
train_cfg = dict(total_kimg=100000)
