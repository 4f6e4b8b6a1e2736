"""StyleGAN3 networks with the official parameter names.

Importing this package registers ``StyleGAN3Generator`` in the genforce ``MODELS`` registry
(the plugin's ``genforce_register_modules`` hook imports it).
"""
from genforce_core.api import MODELS

from .generator import Generator, SynthesisInput, SynthesisLayer, SynthesisNetwork

MODELS.register_module(name='StyleGAN3Generator', module=Generator)

__all__ = ['Generator', 'SynthesisInput', 'SynthesisLayer', 'SynthesisNetwork']
