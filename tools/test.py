"""`python tools/test.py ARGS` is `genforce test ARGS` (used by the launch scripts)."""
import sys

from genforce_core.cli.main import main

if __name__ == '__main__':
    sys.exit(main(['test', *sys.argv[1:]]))
