# DCGAN on the built-in 32x32 shapes, trained by the genforce core engine:
#   genforce train dcgan_shapes32 [--data PATH_TO_DATASET]
# The core's GAN base brings everything but the model and the data: runtime, shuffled
# resumable sampler, collate, one optimizer per network, the kimg loop, logs and the
# sample-grid / progress / checkpoint hooks.
_base_ = ['genforce_core::_base_/gan.py']
resolution = 32

model = dict(
    type='GAN',
    generator=dict(type='DCGANGenerator', z_dim=64, resolution=resolution, base_channels=32),
    discriminator=dict(type='DCGANDiscriminator', resolution=resolution, base_channels=32),
    loss=dict(type='NonSaturatingLoss'),
    ema=dict(half_life_kimg=2, rampup=0.05),
)
train_dataloader = dict(batch_size=32, num_workers=0, persistent_workers=False,
                        dataset=dict(path='builtin:shapes32', resolution=resolution, xflip=False))
train_cfg = dict(total_kimg=50)
# The DCGAN paper's Adam: the base's StyleGAN settings (0.002, betas (0, 0.99)) suit
# equalized-lr networks; with PyTorch's default initialisation they collapse this model's colours.
optim_wrapper = dict(generator=dict(optimizer=dict(lr=0.0002, betas=(0.5, 0.999))),
                     discriminator=dict(optimizer=dict(lr=0.0002, betas=(0.5, 0.999))))
