"""``python -m hifacegan`` is the ``hifacegan`` command."""

from hifacegan.cli import main

raise SystemExit(main())
