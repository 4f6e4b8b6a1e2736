# StyleGAN3-T on AFHQv2 512x512 (all three classes together, the official setting): global
# batch 32 on 8 GPUs, gamma 8.2, x-flips, adaptive augmentation (the official default 'ada':
# 'bgc' pipeline, target r_t 0.6, p adjusted every 4 iterations, speed 500 kimg).
#   genforce prepare-dataset afhqv2/train data/afhqv2/afhqv2512.zip --resolution 512
#   tools/dist_train.sh configs/stylegan3t_afhqv2512.py 8
_base_ = ['_base_/models/stylegan3t.py']
resolution = 512
model = dict(
    type='StyleGAN3ADA',
    generator=dict(img_resolution=resolution),
    discriminator=dict(img_resolution=resolution),
    d_reg=dict(gamma=8.2),
    augment=dict(type='AugmentPipe', preset='bgc', p=0.0),
    ada_target=0.6,
    ada_interval=4,
    ada_kimg=500,
    init_from=dict(checkpoint=None, generator=True, discriminator=True),
    freeze_d=0,
)
train_dataloader = dict(dataset=dict(path='data/afhqv2/afhqv2512.zip', resolution=resolution))
