"""The plug-in's few settings, declared once, stored in kritarc (``[renovate_faces]``) and type-checked on load."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .common import KEEP_GRAIN_HELP, REMOVE_DAMAGE_HELP
from .core import FACE_NICKS

SECTION = "renovate_faces"


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    desc: str

    def parse(self, text: str) -> Any:
        """The stored text as the default's type; the default when it is missing or malformed."""
        if text == "":
            return self.default
        try:
            if isinstance(self.default, bool):
                return text.lower() in ("1", "true", "yes")
            if isinstance(self.default, float):
                value = float(text)
                return value if 0.0 <= value <= 1.0 else self.default
            return type(self.default)(text)
        except ValueError:
            return self.default


FIDELITY = Setting("fidelity", 0.5, "0 = most detail (perceptual), 1 = closest to the photo (fidelity)")
FACES = Setting("faces", "all", "'all' faces, only the 'largest', or the one nearest the 'center'")
START_SERVER = Setting("start_server", True, "Start the Renovate Faces server when it is not running")
# The check boxes (their labels and tooltips are common.py's, as in GIMP).
KEEP_GRAIN = Setting("keep_grain", True, KEEP_GRAIN_HELP)
REMOVE_DAMAGE = Setting("remove_damage", False, REMOVE_DAMAGE_HELP)
ALL = (FIDELITY, FACES, START_SERVER, KEEP_GRAIN, REMOVE_DAMAGE)


def load(setting: Setting) -> Any:
    from krita import Krita

    value = setting.parse(Krita.instance().readSetting(SECTION, setting.name, ""))
    if setting is FACES and value not in FACE_NICKS:
        return setting.default
    return value


def save(setting: Setting, value: Any) -> None:
    from krita import Krita

    Krita.instance().writeSetting(
        SECTION, setting.name, str(value).lower() if isinstance(value, bool) else str(value)
    )
