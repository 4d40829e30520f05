"""``python -m llm_codecs``: the same command line as the ``llm-codecs`` script."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
