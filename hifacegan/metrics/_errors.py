"""The one exception a metric raises when it cannot run here, carrying the reason a report prints."""

from __future__ import annotations


class MetricUnavailable(RuntimeError):
    """A metric's network or weights are missing; ``str()`` says which and how to supply them."""
