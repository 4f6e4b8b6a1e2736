"""Custom ops of the StyleGAN3 plugin: ``filtered_lrelu`` (CUDA kernel + PyTorch reference)."""
from .filtered_lrelu import filtered_lrelu, filtered_lrelu_reference

__all__ = ['filtered_lrelu', 'filtered_lrelu_reference']
