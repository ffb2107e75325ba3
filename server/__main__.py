"""``python -m server`` is ``hifacegan-server``."""

from server.daemon import main

raise SystemExit(main())
