"""Allow ``python -m tradehub_reference_hub`` where the console script is not on PATH."""

from tradehub_reference_hub.cli import main

raise SystemExit(main())
