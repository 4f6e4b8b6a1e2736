"""StyleGAN2 networks with NVIDIA's StyleGAN2-ADA parameter names.

Importing this package registers ``StyleGAN2Generator`` and ``StyleGAN2Discriminator`` in the
genforce ``MODELS`` registry (the plugin's ``genforce_register_modules`` hook imports it).
"""
from genforce_core.api import MODELS

from .discriminator import (
    Discriminator,
    DiscriminatorBlock,
    DiscriminatorEpilogue,
    MinibatchStdLayer,
)
from .layers import Conv2dLayer, FullyConnectedLayer, MappingNetwork, normalize_2nd_moment
from .synthesis import (
    Generator,
    SynthesisBlock,
    SynthesisLayer,
    SynthesisNetwork,
    ToRGBLayer,
    modulated_conv2d,
)

MODELS.register_module(name='StyleGAN2Generator', module=Generator)
MODELS.register_module(name='StyleGAN2Discriminator', module=Discriminator)

__all__ = [
    'Conv2dLayer', 'Discriminator', 'DiscriminatorBlock', 'DiscriminatorEpilogue',
    'FullyConnectedLayer', 'Generator', 'MappingNetwork', 'MinibatchStdLayer',
    'SynthesisBlock', 'SynthesisLayer', 'SynthesisNetwork', 'ToRGBLayer', 'modulated_conv2d',
    'normalize_2nd_moment',
]
