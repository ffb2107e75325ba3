"""Where weights live, and how a name becomes a file.

A weights spec resolves in this order: an existing path; a name in the user's weights folder (platformdirs'
user data dir, ``HIFACEGAN_WEIGHTS_DIR`` overrides); a default embedded in the package. ``default`` names the
embedded fidelity weights, whose card names their perceptual partner for the fidelity slider.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from hifacegan.weights.card import ModelCard
from hifacegan.weights.format import WeightsError, read_card

APP_NAME = "renovate-faces"
SUFFIX = ".safetensors"
EMBEDDED_DIR = Path(__file__).resolve().parent / "embedded"
#: What ``default`` means: the L1-tuned lite weights; their card names the perceptual partner.
DEFAULT_WEIGHTS = "hifacegan-lite-fidelity"


def user_weights_dir() -> Path:
    """The user's own weights (imports, downloads, trained exports)."""
    override = os.environ.get("HIFACEGAN_WEIGHTS_DIR")
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)) / "weights"


@dataclass(frozen=True)
class WeightsEntry:
    name: str
    path: Path
    source: str  # "embedded" | "user" | "path"


def _scan(folder: Path, source: str) -> list[WeightsEntry]:
    if not folder.is_dir():
        return []
    return [WeightsEntry(p.name[: -len(SUFFIX)], p, source) for p in sorted(folder.glob(f"*{SUFFIX}"))]


def list_weights() -> list[WeightsEntry]:
    """Every named weights file: the user's first (they shadow embedded ones of the same name)."""
    seen: dict[str, WeightsEntry] = {}
    for entry in _scan(user_weights_dir(), "user") + _scan(EMBEDDED_DIR, "embedded"):
        seen.setdefault(entry.name, entry)
    return list(seen.values())


def resolve(spec: str | os.PathLike) -> WeightsEntry:
    """Turn a path or a name into a weights file, or raise a WeightsError that says how to get it."""
    text = os.fspath(spec)
    if text == "default":
        text = DEFAULT_WEIGHTS
    path = Path(text).expanduser()
    if path.suffix == SUFFIX or os.sep in text or (os.altsep and os.altsep in text):
        if path.is_file():
            return WeightsEntry(path.stem, path, "path")
        raise WeightsError(f"weights file {path} does not exist")
    for entry in list_weights():
        if entry.name == text:
            return entry
    names = ", ".join(e.name for e in list_weights()) or "none installed"
    raise WeightsError(
        f"no weights named {text!r} (available: {names}). Import a released checkpoint with "
        "`hifacegan weights import PATH --config lipspade-512 --name NAME`, download one with "
        "`hifacegan weights download`, or pass a path to a .safetensors file"
    )


def card_of(spec: str | os.PathLike) -> ModelCard:
    return read_card(resolve(spec).path)


def partner_of(card: ModelCard) -> WeightsEntry | None:
    """The other end of the fidelity slider: the installed weights the card names, or else installed weights
    whose card names this one as its partner.

    The second way lets a perceptual end trained after its fidelity weights were shipped (its card names them)
    join them without rewriting the fidelity file; an end of the other role is required, so that two fidelity
    files never pair up.
    """
    if card.partner:
        try:
            return resolve(card.partner)
        except WeightsError:
            return None
    for entry in list_weights():
        if entry.name == card.name:
            continue
        try:
            other = read_card(entry.path)
        except WeightsError:
            continue
        if other.partner == card.name and other.role and other.role != card.role:
            return entry
    return None
