"""genforce plugin: FID, KID and Inception Score with the TF-FID Inception-v3 in PyTorch.

Public API: :func:`evaluate_generator` (metrics of any ``G(z, c)``), :func:`load_inception`
(the detector), the formulas in :mod:`.scores`, and the mmengine metrics ``FID``/``KID``/``IS``;
precision/recall (:func:`.precision_recall.precision_recall`, metric ``PR``) and perceptual
path length (:func:`perceptual_path_length`, metric ``PPL``) with :func:`load_vgg16` and
:func:`lpips_distance`; StyleGAN3's equivariance (:func:`equivariance_psnr`, metric ``EQ``:
``eqt50k_int``, ``eqt50k_frac``, ``eqr50k``); the offline quality of generators of the
built-in shapes (:func:`evaluate_shapes`, metric ``ShapesQuality``, classifier
:func:`load_shapes_classifier`).
"""
from .equivariance import EQConfig, equivariance_psnr, parse_eq_name
from .evaluation import evaluate_generator, parse_metric_name
from .inception import InceptionV3FID
from .lpips import lpips_distance
from .ppl import PPL_METRICS, PPLConfig, perceptual_path_length
from .scores import feature_stats, frechet_distance, inception_score, kernel_inception_distance
from .shapes_classifier import load_classifier as load_shapes_classifier
from .shapes_quality import evaluate_shapes, shapes_quality
from .vgg16 import VGG16, VGG16WeightsError, load_vgg16
from .weights import InceptionWeightsError, load_inception

__version__ = '0.1.0'

__all__ = ['evaluate_generator', 'parse_metric_name', 'InceptionV3FID', 'load_inception',
           'InceptionWeightsError', 'feature_stats', 'frechet_distance', 'inception_score',
           'kernel_inception_distance', 'perceptual_path_length',
           'PPLConfig', 'PPL_METRICS', 'lpips_distance', 'VGG16', 'VGG16WeightsError',
           'load_vgg16', 'evaluate_shapes', 'shapes_quality', 'load_shapes_classifier',
           'EQConfig', 'equivariance_psnr', 'parse_eq_name']
