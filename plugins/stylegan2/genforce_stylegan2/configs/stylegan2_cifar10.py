# Conditional StyleGAN2 on CIFAR-10 32x32 with the StyleGAN2-ADA paper's settings (cfg 'cifar'):
# global batch 64 on 2 GPUs (32 per GPU), minibatch-std group 32, full channels, lr 0.0025,
# gamma 0.01, EMA 500 kimg with ramp-up 0.05, 2-layer mapping, no path length, no style mixing,
# 'orig' discriminator, x-flips, 100000 kimg.
#   genforce prepare-dataset cifar10_png/ data/cifar10/cifar10.zip --labels labels.json
_base_ = ['_base_/models/stylegan2.py']
resolution = 32
num_classes = 10
model = dict(
    generator=dict(c_dim=num_classes, img_resolution=resolution,
                   mapping_kwargs=dict(num_layers=2)),
    discriminator=dict(c_dim=num_classes, img_resolution=resolution, architecture='orig',
                       epilogue_kwargs=dict(mbstd_group_size=32)),
    d_reg=dict(gamma=0.01),
    g_reg=None,
    style_mixing_prob=0,
    ema=dict(half_life_kimg=500, rampup=0.05),
)
# Official keeps G's lazy interval 4 with path length disabled, so G's Adam is still rescaled.
optim_wrapper = dict(generator=dict(reg_interval=4, optimizer=dict(lr=0.0025)),
                     discriminator=dict(optimizer=dict(lr=0.0025)))
train_dataloader = dict(batch_size=32, dataset=dict(path='data/cifar10/cifar10.zip',
                                                    resolution=resolution, use_labels=True))
train_cfg = dict(total_kimg=100000)
