"""The example plugin's own tests: its networks fit the core GAN's contract."""
import sys

import pytest
import torch


@pytest.fixture(scope='module')
def networks(example_plugin_site):
    """The plugin's networks module, from the copy pip installed (see the root conftest)."""
    sys.path.insert(0, str(example_plugin_site))
    try:
        from genforce_example_dcgan import networks
    finally:
        sys.path.remove(str(example_plugin_site))
    return networks


@pytest.mark.parametrize('resolution', [8, 32, 64])
def test_shapes_and_range(networks, resolution):
    G = networks.DCGANGenerator(z_dim=16, resolution=resolution, base_channels=8)
    D = networks.DCGANDiscriminator(resolution=resolution, base_channels=8)
    z = torch.randn(3, 16)
    img = G(z, torch.zeros(3, 0))
    assert img.shape == (3, 3, resolution, resolution)
    assert img.abs().max() <= 1
    assert D(img, torch.zeros(3, 0)).shape == (3, 1)


def test_bad_resolution_is_refused(networks):
    with pytest.raises(ValueError, match='power of two'):
        networks.DCGANGenerator(resolution=48)
