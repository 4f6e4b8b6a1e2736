"""Custom ops of the StyleGAN plugin: ``blur2d`` (CUDA kernel + PyTorch reference)."""
from .blur2d import blur2d, blur2d_reference, blur_filter

__all__ = ['blur2d', 'blur2d_reference', 'blur_filter']
