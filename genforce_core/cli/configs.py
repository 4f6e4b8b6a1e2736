"""``genforce configs``: the configs that the installed plugins ship.

Train one by name, or by ``PACKAGE::PATH``; both work from a plain pip install::

    genforce train stylegan2ada_cifar10
    genforce train genforce_stylegan2ada::stylegan2ada_cifar10.py

Write your own config on top of one with ``_base_ = ['genforce_stylegan2::stylegan2_ffhq.py']``,
or on top of the core's GAN base, ``_base_ = ['genforce_core::_base_/gan.py']``.
"""
from __future__ import annotations

import argparse
import json

from ..config import packaged_configs
from .helpfmt import add_command


def add_parser(subparsers) -> None:
    parser = add_command(subparsers, 'configs', help='list the configs of the installed plugins',
                         description=__doc__)
    parser.add_argument('--json', action='store_true',
                        help='machine-readable output (name, plugin, package, reference, path)')
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    configs = packaged_configs()
    if args.json:
        print(json.dumps([c.as_dict() for c in configs], indent=2))
        return 0
    if not configs:
        print('No packaged configs: no installed plugin ships any (see `genforce plugins`).')
        return 0
    width = max(len(c.name) for c in configs)
    plugin_width = max(len(c.plugin) for c in configs)
    for c in configs:
        print(f'{c.name:<{width}}  {c.plugin:<{plugin_width}}  {c.path}')
    return 0
