"""Downloads with checksums, into the user's folder, never half-written.

Users' top complaints about face-restoration tools are downloads that fail, arrive truncated, or land in the
wrong folder: we stream to a temp file beside the target, check the size and sha256, then rename.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from hifacegan._files import atomic_output
from hifacegan.weights.format import WeightsError

#: Known remote weights: name -> (url, sha256 of the file, config for .pth imports). The release's own
#: checkpoints are hosted on Baidu/Yandex behind pages, not direct links, so none are listed: import them by path.
REMOTE: dict[str, tuple[str, str, str | None]] = {}


def download_file(
    url: str, dest: Path, sha256: str | None, timeout: float = 60.0, progress: bool = True
) -> Path:
    """Fetch ``url`` to ``dest`` atomically; fail (and keep nothing) on a network error or checksum mismatch."""
    import requests
    from tqdm import tqdm

    digest = hashlib.sha256()
    # atomic_output keeps nothing unless the whole block succeeds: a failed, truncated or corrupt download
    # leaves no file behind.
    with atomic_output(dest, fsync=True, suffix=".part") as out:
        try:
            response = requests.get(url, stream=True, timeout=timeout)
            response.raise_for_status()
        except requests.RequestException as exc:
            raise WeightsError(
                f"could not download {url} ({exc}). Check your connection, or download it by hand and "
                "pass the file's path"
            ) from None
        total = int(response.headers.get("content-length") or 0) or None
        with tqdm(total=total, unit="B", unit_scale=True, desc=dest.name, disable=not progress) as bar:
            try:
                for chunk in response.iter_content(1 << 20):
                    out.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
            except requests.RequestException as exc:
                raise WeightsError(
                    f"download of {url} was truncated after {out.tell()} bytes ({exc}); try again"
                ) from None
        if total is not None and out.tell() != total:
            raise WeightsError(f"download of {url} was truncated ({out.tell()} of {total} bytes); try again")
        if sha256 and digest.hexdigest() != sha256.lower():
            raise WeightsError(
                f"download of {url} has sha256 {digest.hexdigest()}, expected {sha256}: the file is corrupt "
                "or was replaced; nothing was saved"
            )
    return dest
