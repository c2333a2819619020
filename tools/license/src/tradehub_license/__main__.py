"""``python -m tradehub_license``: the same as the ``tradehub-license`` command."""

import sys

from tradehub_license.cli import main

sys.exit(main())
