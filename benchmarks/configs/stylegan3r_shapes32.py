# Benchmark-only tiny StyleGAN3-R on the built-in shapes (32x32) for benchmarks/train_speed.py:
# the plugin's stylegan3t_shapes32 with the generator changed as the official R configuration
# changes T (1x1 convolutions, radial filters, twice the channels: base 2048, max 64) and the
# blur of D's inputs (sigma 10 pixels fading over the first 50 kimg at batch 8). Not a recipe.
_base_ = ['genforce_stylegan3::stylegan3t_shapes32.py']
model = dict(
    generator=dict(channel_base=2048, channel_max=64, conv_kernel=1, use_radial_filters=True),
    blur_init_sigma=10,
)
