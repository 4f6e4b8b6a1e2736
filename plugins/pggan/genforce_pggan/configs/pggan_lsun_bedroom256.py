# PGGAN on LSUN bedroom 256x256 with the paper's schedule (see pggan_celebahq1024.py): start at
# 4x4, 800 kimg per level and per fade-in, minibatch 16 (14 at 256x256, per GPU), WGAN-GP with
# drift, EMA 0.999 per step. Full resolution is reached at 9600 kimg.
_base_ = ['pggan_celebahq1024.py']
resolution = 256
model = dict(generator=dict(img_resolution=resolution),
             discriminator=dict(img_resolution=resolution))
train_dataloader = dict(dataset=dict(path='data/lsun/bedroom256.zip', resolution=resolution,
                                     xflip=False))
train_cfg = dict(total_kimg=12000)
