"""``python -m server`` is ``hifacegan-server``."""

from server.cli import main

raise SystemExit(main())
