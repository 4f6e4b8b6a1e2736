"""Model-agnostic GAN building blocks: the GAN base model, EMA, losses, data preprocessor."""
from .base_gan import GAN, NonFiniteLossError, to_uint8
from .data_preprocessor import GANDataPreprocessor
from .ema import GeneratorEMA
from .losses import NonSaturatingLoss, R1Penalty
from .progressive import ProgressiveDataPreprocessor, fade_images

__all__ = ['GAN', 'NonFiniteLossError', 'to_uint8', 'GANDataPreprocessor', 'GeneratorEMA',
           'NonSaturatingLoss', 'R1Penalty', 'ProgressiveDataPreprocessor', 'fade_images']
