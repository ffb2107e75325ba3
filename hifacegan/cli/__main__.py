"""``python -m hifacegan.cli`` is the ``hifacegan`` command too."""

from hifacegan.cli import main

raise SystemExit(main())
