"""``genforce zoo list`` and ``genforce zoo download NAME``: the model zoo of installed plugins.

Downloads go to ``$GENFORCE_ZOO_CACHE`` (default ``~/.cache/genforce/zoo``) or ``--to DIR``,
resume where they stopped, are checked against the entry's sha256 and converted to a genforce
checkpoint. ``--from PATH`` (or a ``file://`` URL) takes the file from disk on offline machines;
it replaces a cached download and checkpoint, checked exactly like a fresh download.
Entries without a published sha256 need ``--no-verify``; once the file has converted, the hash
seen is recorded and enforced from then on (a file that does not convert is deleted, never
recorded; ``--no-convert`` records nothing).
"""
from __future__ import annotations

import argparse
import json

from .. import zoo
from .helpfmt import add_command


def add_parser(subparsers) -> None:
    parser = add_command(subparsers, 'zoo', help='list and download model-zoo entries',
                         description=__doc__)
    sub = parser.add_subparsers(dest='zoo_command', metavar='ACTION',
                                help='what to do (default: show this help)')
    lister = add_command(sub, 'list', help='show the entries of the installed plugins',
                         description='The model-zoo entries of the installed plugins.')
    lister.add_argument('--json', action='store_true', help='machine-readable output')
    lister.set_defaults(func=run_list)
    down = add_command(sub, 'download', help='fetch (and convert) one entry',
                       description='Fetch one model-zoo entry, check its sha256 and convert it '
                       'to a genforce checkpoint.')
    down.add_argument('name', help='entry name (see `genforce zoo list`)')
    down.add_argument('--to', metavar='DIR',
                      help='folder for the files (default: the zoo cache)')
    down.add_argument('--from', dest='source', metavar='PATH_OR_URL',
                      help='take the official file from here (local path, file:// or URL); '
                      'replaces the cached file, checked like a fresh download (default: '
                      "the entry's URL)")
    down.add_argument('--no-verify', action='store_true',
                      help='accept a file whose entry has no published sha256 (its hash is '
                      'recorded once it converted, and enforced from then on)')
    down.add_argument('--no-convert', action='store_true',
                      help='only fetch the official file, do not convert it')
    down.set_defaults(func=run_download)
    parser.set_defaults(func=lambda args: parser.print_help() or 2)


def run_list(args: argparse.Namespace) -> int:
    entries = zoo.list_entries()
    if args.json:
        print(json.dumps(entries, indent=1))
        return 0
    if not entries:
        print('No model-zoo entries: install a plugin that contributes some '
              '(e.g. genforce-plugin-converters).')
        return 0
    cache = zoo.cache_dir()
    header = ('name', 'family', 'res', 'dataset', 'FID', 'converter', 'sha256', 'cached')
    rows = [header]
    for e in entries:
        fid = '-' if e.get('fid') is None else f'{e["fid"]:.2f}'
        rows.append((e['name'], e['family'], str(e['resolution']), e['dataset'], fid,
                     e['converter'], 'yes' if e['sha256'] else 'unknown',
                     'yes' if (cache / f'{e["name"]}.pth').is_file() else ''))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    for row in rows:
        print('  '.join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    print(f'\ncache: {cache}')
    return 0


def run_download(args: argparse.Namespace) -> int:
    verify = not args.no_verify
    if args.no_convert:
        path = zoo.fetch(args.name, to=args.to, source=args.source, verify=verify)
    else:
        path = zoo.ensure_converted(args.name, to=args.to, source=args.source, verify=verify)
    print(path)
    return 0
