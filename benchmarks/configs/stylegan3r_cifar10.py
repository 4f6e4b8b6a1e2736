# Benchmark-only StyleGAN3-R at CIFAR-10 size (32x32, 10 classes) for benchmarks/train_speed.py:
# the plugin's stylegan3t_cifar10 with the generator changed as the official R configuration
# changes T (1x1 convolutions, radial filters, twice the channels: base 32768, max 1024) and the
# blur of D's inputs (sigma 10 pixels fading over the first 200 kimg). Not a tuned recipe.
_base_ = ['genforce_stylegan3::stylegan3t_cifar10.py']
model = dict(
    generator=dict(channel_base=32768, channel_max=1024, conv_kernel=1, use_radial_filters=True),
    blur_init_sigma=10,
)
