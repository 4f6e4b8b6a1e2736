"""`python tools/train.py ARGS` is `genforce train ARGS` (used by the launch scripts)."""
import sys

from genforce_core.cli.main import main

if __name__ == '__main__':
    sys.exit(main(['train', *sys.argv[1:]]))
