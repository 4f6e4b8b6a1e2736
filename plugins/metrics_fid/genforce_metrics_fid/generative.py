"""Base of metrics that draw their own images from the model (no ``val_step`` outputs).

``GenerativeValLoop`` / ``GenerativeTestLoop`` call ``evaluate_model(model, dataset, shared)``
on every metric that has it (FID/KID/IS, PR, PPL, ShapesQuality); other metrics get the usual
``process`` / ``compute_metrics`` calls.
"""
from __future__ import annotations

from mmengine.evaluator import BaseMetric

from .scores import MetricError


class GenerativeMetric(BaseMetric):
    """A metric evaluated by :meth:`evaluate_model`, which generates its own images."""

    def evaluate_model(self, model, dataset=None, shared: dict | None = None,
                       device=None) -> dict[str, float]:
        """Metric values of ``model`` (a genforce GAN or a bare generator); ``dataset`` is the
        loop's dataset, ``shared`` a dict the metrics of one evaluation may share work in."""
        raise NotImplementedError

    def process(self, data_batch, data_samples) -> None:
        raise MetricError(f'{type(self).__name__} generates its own images: evaluate with '
                          "val_cfg = dict(type='GenerativeValLoop') / test_cfg = "
                          "dict(type='GenerativeTestLoop')")

    def compute_metrics(self, results: list) -> dict[str, float]:
        raise NotImplementedError
