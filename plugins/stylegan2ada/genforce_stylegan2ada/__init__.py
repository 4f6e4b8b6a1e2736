"""genforce plugin for StyleGAN2-ADA, adaptive discriminator augmentation (Karras et al. 2020)."""

__version__ = '0.1.0'
