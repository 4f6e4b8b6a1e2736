"""The example plugin's own tests: its networks fit the core GAN's contract."""
import pytest
import torch

from genforce_example_dcgan.networks import DCGANDiscriminator, DCGANGenerator


@pytest.mark.parametrize('resolution', [8, 32, 64])
def test_shapes_and_range(resolution):
    G = DCGANGenerator(z_dim=16, resolution=resolution, base_channels=8)
    D = DCGANDiscriminator(resolution=resolution, base_channels=8)
    z = torch.randn(3, 16)
    img = G(z, torch.zeros(3, 0))
    assert img.shape == (3, 3, resolution, resolution)
    assert img.abs().max() <= 1
    assert D(img, torch.zeros(3, 0)).shape == (3, 1)


def test_bad_resolution_is_refused():
    with pytest.raises(ValueError, match='power of two'):
        DCGANGenerator(resolution=48)
