# Class-conditional StyleGAN2-ADA on CIFAR-10 32x32 (official cfg 'cifar', --cond=1): the
# settings of stylegan2_cifar10.py (global batch 64 on 2 GPUs, minibatch-std group 32, lr
# 0.0025, gamma 0.01, EMA 500 kimg with ramp-up 0.05, 2-layer mapping, 'orig' discriminator,
# no path length, no style mixing, x-flips, 100000 kimg) with ADA 'bgc', target 0.6.
#   genforce prepare-dataset cifar10_png/ data/cifar10/cifar10.zip --labels labels.json
#   tools/dist_train.sh configs/stylegan2ada_cifar10.py 2
_base_ = ['genforce_stylegan2::stylegan2_cifar10.py']
model = dict(
    type='StyleGAN2ADA',
    augment=dict(type='AugmentPipe', preset='bgc', p=0.0),
    ada_target=0.6,
    ada_interval=4,
    ada_kimg=500,
    init_from=dict(checkpoint=None, generator=True, discriminator=True),
    freeze_d=0,
)
