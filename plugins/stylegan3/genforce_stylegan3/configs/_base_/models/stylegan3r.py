# StyleGAN3-R (translation and rotation equivariant): StyleGAN3-T with 1x1 convolutions, radial
# (jinc) filters and twice the generator's channels (base 65536, max 1024); the discriminator's
# inputs are blurred at the start of training (Gaussian, sigma 10 pixels fading to 0 over the
# first 200 kimg at batch 32). FFHQ 1024x1024, gamma 32.8, as the T base otherwise.
_base_ = ['stylegan3t.py']
model = dict(
    generator=dict(channel_base=65536, channel_max=1024, conv_kernel=1,
                   use_radial_filters=True),
    blur_init_sigma=10,
)
