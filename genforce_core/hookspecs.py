"""The plugin contract: pluggy hook specifications of the ``genforce`` project.

A plugin is a module named by an entry point in the ``genforce.plugins`` group. It declares the
plugin API it was written for and implements any of the hooks below::

    # genforce_mygan/plugin.py
    from genforce_core import hookimpl

    GENFORCE_PLUGIN_API = '1.0'

    @hookimpl
    def genforce_register_modules(registries):
        from . import models  # noqa: F401  (classes use @MODELS.register_module())

Compatibility: a plugin runs when the major version of ``GENFORCE_PLUGIN_API`` equals the
core's ``PLUGIN_API_VERSION`` major and its minor is not newer than the core's.
"""
from __future__ import annotations

import argparse
import os
from types import SimpleNamespace
from typing import Any

import pluggy

PROJECT_NAME = 'genforce'
PLUGIN_API_VERSION = '1.0'

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def genforce_register_modules(registries: SimpleNamespace) -> None:
    """Register the plugin's modules into the core registries.

    ``registries`` has one attribute per registry (``models``, ``losses``, ``runners``,
    ``hooks``, ``datasets``, ``metrics``, ``converters``, ``data_samplers``,
    ``optim_wrapper_constructors``). Importing modules whose classes use
    ``@MODELS.register_module()`` is enough; everything registered during this call (and during
    the import of the plugin module) is attributed to the plugin.
    """


@hookspec
def genforce_model_zoo() -> list[dict[str, Any]]:
    """Return model-zoo entries.

    Each entry is a dict with at least ``name``, ``family``, ``resolution``, ``dataset``,
    ``url``, ``sha256`` and ``converter`` (a CONVERTERS key); ``fid`` is optional.
    """


@hookspec
def genforce_op_status() -> dict[str, str]:
    """Report the plugin's custom ops: ``{op_name: status}``.

    Status is a short human-readable string such as ``'cuda'``, ``'reference'`` or
    ``'reference (nvcc not found)'``. Must be cheap: never compile anything here.
    """


@hookspec
def genforce_add_cli_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add subcommands to the ``genforce`` command line.

    Call ``subparsers.add_parser(name, help=...)``, add arguments, and set the handler with
    ``parser.set_defaults(func=callable)``; the callable gets the parsed ``argparse.Namespace``
    and returns an exit code (or None for success).
    """


@hookspec
def genforce_config_dirs() -> list[str | os.PathLike]:
    """Return the folders holding the plugin's configs (usually ``[<package>/configs]``).

    ``genforce configs`` lists their ``*.py`` files outside ``_base_`` folders, ``genforce
    train NAME`` finds them by name, and a config anywhere can inherit one as
    ``'<package>::<path in the folder>'`` (e.g. ``'genforce_stylegan2::stylegan2_ffhq.py'``),
    ``<package>`` being the top-level package of the plugin module. Ship the folder in the wheel
    (package data).
    """


@hookspec
def genforce_test_models() -> list[dict[str, Any]]:
    """Return tiny models for the contract suite (:mod:`genforce_core.testing`).

    Each entry is ``dict(name='mygan_tiny', model=dict(type='GAN', generator=...,
    discriminator=..., ...))``: a training-model config (the ``model`` of a training config)
    small enough to build and run a training step in about a second on a CPU. Together the
    entries must build every generator, discriminator and training model the plugin
    registers; ``contract_tests(PLUGIN)`` checks that and runs every contract check on each.
    """
