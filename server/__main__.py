"""``python -m hifacegan_server`` is ``hifacegan-server``."""

from hifacegan_server.cli import main

raise SystemExit(main())
