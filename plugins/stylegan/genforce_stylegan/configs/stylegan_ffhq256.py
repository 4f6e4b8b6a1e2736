# StyleGAN on FFHQ 256x256: the official / original-GenForce settings of stylegan_ffhq1024.py
# (progressive growing from 8x8, 600 + 600 kimg, per-resolution batch and lr, R1 gamma 10,
# style mixing 0.9, 25000 kimg) at 256x256.
_base_ = ['stylegan_ffhq1024.py']
resolution = 256
model = dict(generator=dict(img_resolution=resolution),
             discriminator=dict(img_resolution=resolution))
train_dataloader = dict(dataset=dict(path='data/ffhq/ffhq256.zip', resolution=resolution))
