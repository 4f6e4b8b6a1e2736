"""StyleGAN3 networks with the official parameter names (work in progress: not registered)."""
from .generator import Generator, SynthesisInput, SynthesisLayer, SynthesisNetwork

__all__ = ['Generator', 'SynthesisInput', 'SynthesisLayer', 'SynthesisNetwork']
