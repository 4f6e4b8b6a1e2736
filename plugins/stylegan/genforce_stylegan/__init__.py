"""genforce plugin for StyleGAN (Karras et al. 2019)."""

__version__ = '0.1.0'
