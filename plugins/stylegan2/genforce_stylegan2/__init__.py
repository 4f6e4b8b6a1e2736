"""genforce plugin for StyleGAN2 (Karras et al. 2020) and its custom CUDA ops."""

__version__ = '0.1.0'
