"""genforce plugin: FID, KID and Inception Score with the TF-FID Inception-v3 in PyTorch.

Public API: :func:`evaluate_generator` (metrics of any ``G(z, c)``), :func:`load_inception`
(the detector), the formulas in :mod:`.scores`, and the mmengine metrics ``FID``/``KID``/``IS``.
"""
from .evaluation import evaluate_generator, parse_metric_name
from .inception import InceptionV3FID
from .scores import feature_stats, frechet_distance, inception_score, kernel_inception_distance
from .weights import InceptionWeightsError, load_inception

__version__ = '0.1.0'

__all__ = ['evaluate_generator', 'parse_metric_name', 'InceptionV3FID', 'load_inception',
           'InceptionWeightsError', 'feature_stats', 'frechet_distance', 'inception_score',
           'kernel_inception_distance']
