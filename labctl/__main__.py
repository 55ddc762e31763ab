"""``python -m labctl``: the command line (the edge), as the ``labctl`` script."""

import sys

from labctl.cli import main

sys.exit(main())
