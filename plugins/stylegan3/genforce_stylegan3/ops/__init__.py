"""Custom ops of the StyleGAN3 plugin (reference implementations in plain PyTorch)."""
from .filtered_lrelu import filtered_lrelu

__all__ = ['filtered_lrelu']
