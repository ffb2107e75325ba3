"""Argument types shared by the subcommands, so a bad number or task name reads the same everywhere."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def at_least(minimum: int, what: str = "") -> Callable[[str], int]:
    """An argparse ``type`` for integers of at least ``minimum`` (``what`` names the unit in the error)."""

    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
        if number < minimum:
            unit = f" {what}" if what else ""
            raise argparse.ArgumentTypeError(f"must be {minimum}{unit} or more, got {number}")
        return number

    return parse


PRECISION_CHOICES = ("auto", "fp32", "fp16", "bf16")
PRECISION_HELP = (
    "the networks' number format: auto (float32 unless half precision was measured within tolerance for the "
    "device and weights), fp32, fp16 or bf16; a half-precision batch that gives NaN or Inf is redone in fp32"
)


def task_name(value: str) -> str:
    """A degradation task or alias, resolved to its canonical name; the error lists the valid ones."""
    from hifacegan.degradations import get_task

    try:
        return get_task(value).name
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
