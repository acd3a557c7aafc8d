"""`python -m dispatch.cli`: the same as the `yiwang` command."""

import sys

from dispatch.cli import main

sys.exit(main())
