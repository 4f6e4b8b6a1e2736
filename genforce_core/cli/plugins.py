"""``genforce plugins``: the installed plugins, what each registered, op status, errors."""
from __future__ import annotations

import argparse
import json

from ..plugins import load_plugins
from .helpfmt import add_command


def add_parser(subparsers) -> None:
    parser = add_command(subparsers, 'plugins', help='list installed plugins',
                         description=__doc__)
    parser.add_argument('--json', action='store_true', help='machine-readable output')
    parser.add_argument('-v', '--verbose', action='store_true',
                        help='show the traceback of plugins that failed to load')
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    manager = load_plugins()
    manager.collect_op_status()
    infos = list(manager.plugins.values())
    if args.json:
        print(json.dumps([info.as_dict() for info in infos], indent=2))
        return 0
    if not infos:
        print('No genforce plugins installed (entry-point group genforce.plugins).')
    for info in infos:
        print(f'{info.name} ({info.distribution} {info.version}) [{info.status}]')
        if info.error:
            print(f'    error: {info.error}')
            if args.verbose and info.traceback:
                print('    ' + info.traceback.replace('\n', '\n    '))
        for rival in info.rivals:
            print(f'    also declared by {rival} (not imported)')
        for registry, keys in info.registered.items():
            print(f'    {registry}: {", ".join(keys)}')
        for op, status in info.ops.items():
            print(f'    op {op}: {status}')
    return 0
