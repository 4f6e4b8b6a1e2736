"""Entry point of the ``metrics_fid`` genforce plugin (group ``genforce.plugins``).

Registers the metrics ``FID``, ``KID`` and ``IS`` (METRICS), the loops ``GenerativeValLoop``
and ``GenerativeTestLoop`` (LOOPS), the hook ``KimgEvalHook`` (HOOKS), and the subcommand
``genforce fid-stats``.
"""
from __future__ import annotations

from types import SimpleNamespace

from genforce_core import hookimpl

GENFORCE_PLUGIN_API = '1.0'


@hookimpl
def genforce_register_modules(registries: SimpleNamespace) -> None:
    """Import the modules whose classes register themselves."""
    from . import loops, metrics  # noqa: F401


@hookimpl
def genforce_add_cli_commands(subparsers) -> None:
    from .cli import add_parser
    add_parser(subparsers)
