"""Entry point of the ``metrics_fid`` genforce plugin (group ``genforce.plugins``).

Registers the metrics ``FID``, ``KID``, ``IS``, ``PR``, ``PPL``, ``EQ`` (StyleGAN3's
equivariance) and ``ShapesQuality`` (METRICS; the last one judges generators of the built-in
shapes, offline), the loops
``GenerativeValLoop`` and ``GenerativeTestLoop`` (LOOPS), the hook ``KimgEvalHook`` (HOOKS), and
the subcommands ``genforce fid-stats`` and ``genforce metrics``.
"""
from __future__ import annotations

from genforce_core.api import hookimpl

GENFORCE_PLUGIN_API = '1.0'


@hookimpl
def genforce_register_modules() -> None:
    """Import the modules whose classes register themselves."""
    from . import equivariance, loops, metrics, pr_ppl, shapes_quality  # noqa: F401


@hookimpl
def genforce_add_cli_commands(subparsers) -> None:
    from .calc_metrics import add_parser as add_metrics_parser
    from .cli import add_parser
    add_parser(subparsers)
    add_metrics_parser(subparsers)
