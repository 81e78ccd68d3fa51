"""`python -m durable.cli`: the `durable` command without the installed console script."""

import sys

from durable.cli.console import main

sys.exit(main())
