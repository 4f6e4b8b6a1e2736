# StyleGAN on LSUN bedroom 256x256: the official settings of stylegan_ffhq1024.py at 256x256,
# without x-flips (official `mirror_augment = False` for LSUN bedroom); 25000 kimg.
_base_ = ['stylegan_ffhq1024.py']
resolution = 256
model = dict(generator=dict(img_resolution=resolution),
             discriminator=dict(img_resolution=resolution))
train_dataloader = dict(dataset=dict(path='data/lsun/bedroom256.zip', resolution=resolution,
                                     xflip=False))
