"""Run the command line: `python -m app --help`."""

import os
import sys

# No model or data is ever fetched at run time.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from .cli import main  # noqa: E402

sys.exit(main())
