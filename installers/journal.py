"""Every change the installer makes goes through :class:`Journal`, which records it in a manifest to undo it.

The manifest (``<config>/install-manifest.json``) lists, in order, the folders and files the installer created,
the files it replaced (with a backup of the user's version), the INI keys it set (with their previous value) and
the commands to run on uninstall. Uninstall walks it backwards, so it removes what was added and nothing else.
Re-running install finds its own entries there and never mistakes its own files for the user's.

With ``dry_run`` nothing is written: each action is only printed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hifacegan._files import sha256_file
from hifacegan_installers import kritarc

MANIFEST_VERSION = 1
BACKUP_DIR = "install-backup"


class InstallError(Exception):
    """Something the user must fix before the installer can go on; the message says what."""


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def atomic_write(path: Path, data: bytes, mode: int | None = None) -> None:
    """Write ``path`` through a temporary file and ``os.replace``: readers never see half a file."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class Journal:
    """Applies changes under a home folder and records them in the manifest."""

    def __init__(self, manifest: Path, dry_run: bool = False, say: Callable[[str], None] = print) -> None:
        self.manifest = manifest
        self.dry_run = dry_run
        self.say = say
        self.entries: list[dict[str, Any]] = []
        self.created_at = time.strftime("%Y-%m-%dT%H:%M:%S")
        self.info: dict[str, Any] = {}
        if manifest.is_file():
            try:
                data = json.loads(manifest.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise InstallError(
                    f"The install manifest {manifest} is unreadable ({exc}); fix or delete it, then run again."
                ) from None
            self.entries = list(data.get("entries", []))
            self.created_at = data.get("created", self.created_at)
            self.info = dict(data.get("info", {}))
        self.changed = 0
        self.planned: set[str] = set()  # dry run: folders that would exist by now

    # ---- bookkeeping ------------------------------------------------------------------------------------

    def find(self, kind: str, path: Path, **match: Any) -> dict[str, Any] | None:
        for entry in self.entries:
            same = entry["kind"] == kind and entry["path"] == str(path)
            if same and all(entry.get(k) == v for k, v in match.items()):
                return entry
        return None

    def owns(self, path: Path) -> bool:
        return any(
            e["path"] == str(path) and e["kind"] in ("dir", "file", "tree", "symlink") for e in self.entries
        )

    def _record(self, entry: dict[str, Any]) -> None:
        self.entries.append(entry)
        self.save()

    def save(self) -> None:
        if self.dry_run:
            return
        data = {
            "version": MANIFEST_VERSION,
            "created": self.created_at,
            "updated": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "info": self.info,
            "entries": self.entries,
        }
        self._ensure_manifest_dir()
        atomic_write(self.manifest, (json.dumps(data, indent=1) + "\n").encode(), 0o600)

    def _ensure_manifest_dir(self) -> None:
        missing = []
        folder = self.manifest.parent
        while not folder.exists():
            missing.append(folder)
            folder = folder.parent
        for folder in reversed(missing):
            folder.mkdir(mode=0o700)
            self.entries.append({"kind": "dir", "path": str(folder)})

    def _backup(self, path: Path) -> str:
        """Keep the user's version of a file we are about to replace; returns the backup's path."""
        folder = self.manifest.parent / BACKUP_DIR
        self._ensure_manifest_dir()
        if not folder.exists():
            folder.mkdir(mode=0o700)
        backup = folder / f"{len(self.entries):04d}-{path.name}"
        shutil.copy2(path, backup)
        return str(backup)

    def _act(self, verb: str, what: Path | str) -> bool:
        """Print an action; True when it should really happen."""
        self.changed += 1
        self.say(f"{'would ' if self.dry_run else ''}{verb} {what}")
        return not self.dry_run

    # ---- actions ----------------------------------------------------------------------------------------

    def ensure_dir(self, path: Path, mode: int = 0o755) -> None:
        """Create ``path`` and its missing parents, recording each one created."""
        missing = []
        folder = path
        while not folder.exists() and not folder.is_symlink() and str(folder) not in self.planned:
            missing.append(folder)
            folder = folder.parent
        if str(folder) not in self.planned and not folder.is_dir():
            raise InstallError(f"{folder} is not a folder; move it away and run the installer again.")
        for folder in reversed(missing):
            if self.dry_run:
                self.planned.add(str(folder))
            if folder.is_dir():  # the manifest's own folder, made (and recorded) meanwhile
                continue
            if self._act("create folder", folder):
                folder.mkdir(mode=mode)
                self._record({"kind": "dir", "path": str(folder)})

    def write_file(self, path: Path, data: bytes, mode: int = 0o644) -> None:
        """Create or update ``path`` with ``data``; a different file of the user's is backed up first."""
        self.ensure_dir(path.parent)
        ours = self.find("file", path)
        current = None
        with contextlib.suppress(OSError):  # a folder or an unreadable file: nothing of ours to compare
            current = sha256_file(path) if path.exists() else None
        wanted = sha256_bytes(data)
        if current == wanted and (path.stat().st_mode & 0o777) == mode:
            if ours is None:
                self.say(
                    f"already there (not ours, left alone) {path}" if self.dry_run else f"unchanged {path}"
                )
            return
        if path.is_dir() and not path.is_symlink():
            raise InstallError(f"{path} is a folder where a file belongs; move it away and run again.")
        verb = "update" if current is not None else "create"
        if not self._act(verb, path):
            return
        backup = self._backup(path) if current is not None and ours is None else None
        atomic_write(path, data, mode)
        if ours is None:
            self._record({"kind": "file", "path": str(path), "sha256": wanted, "backup": backup})
        else:
            ours["sha256"] = wanted
            self.save()

    def copy_file(self, source: Path, target: Path, mode: int = 0o644) -> None:
        self.write_file(target, source.read_bytes(), mode)

    def add_tree(self, path: Path, fill: Callable[[Path], None]) -> None:
        """A folder we own as a whole (vendored packages): ``fill`` populates a fresh temporary copy."""
        ours = self.find("tree", path)
        if path.exists() and ours is None:
            self.say(f"left alone (not installed by us) {path}")
            return
        if not self._act("update" if path.exists() else "create", f"{path}/"):
            return
        self.ensure_dir(path.parent)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
        try:
            fill(tmp)
            if path.exists():
                shutil.rmtree(path)
            os.replace(tmp, path)
            os.chmod(path, 0o755)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        if ours is None:
            self._record({"kind": "tree", "path": str(path)})

    def symlink(self, path: Path, target: str) -> None:
        if path.is_symlink() and os.readlink(path) == target:
            return
        if path.exists() or path.is_symlink():
            if self.find("symlink", path) is None:
                raise InstallError(f"{path} exists and is not ours; remove it and run the installer again.")
            if self._act("update link", path):
                path.unlink()
                os.symlink(target, path)
            return
        self.ensure_dir(path.parent)
        if self._act(f"link -> {target}", path):
            os.symlink(target, path)
            self._record({"kind": "symlink", "path": str(path), "target": target})

    def set_ini(self, path: Path, section: str, key: str, value: str) -> None:
        """Set one key of an INI file (kritarc), remembering the previous value and the file's bytes."""
        existed = path.is_file()
        text = path.read_text(encoding="utf-8") if existed else ""
        previous = kritarc.get_value(text, section, key)
        if previous == value:
            return
        if not self._act(f"set [{section}] {key}={value} in", path):
            return
        self.ensure_dir(path.parent)
        entry = self.find("ini", path, section=section, key=key)
        new_text = kritarc.set_value(text, section, key, value)
        if entry is None:
            entry = {
                "kind": "ini",
                "path": str(path),
                "section": section,
                "key": key,
                "previous": previous,
                "file_created": not existed,
                "section_created": kritarc._section_bounds(text.splitlines(), section) is None,
                "original": self._backup(path) if existed else None,
            }
            self.entries.append(entry)
        atomic_write(path, new_text.encode("utf-8"), (path.stat().st_mode & 0o777) if existed else 0o644)
        entry["written_sha256"] = sha256_bytes(new_text.encode("utf-8"))
        self.save()

    def on_uninstall(self, argv: list[str]) -> None:
        """Record a command for uninstall to run, without running anything now."""
        if not self.dry_run and self.find("command", Path(" ".join(argv))) is None:
            self._record({"kind": "command", "path": " ".join(argv), "argv": argv})

    def command(
        self, argv: list[str], undo: list[str] | None, why: str
    ) -> subprocess.CompletedProcess | None:
        """Run ``argv`` (unless dry run) and record ``undo`` to run on uninstall."""
        if not self._act("run", " ".join(argv) + f"   ({why})"):
            return None
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as exc:
            self.say(f"  failed: {exc}")
            return None
        if proc.returncode != 0:
            self.say(f"  failed (exit {proc.returncode}): {(proc.stderr or proc.stdout).strip()[-500:]}")
        elif undo and self.find("command", Path(" ".join(undo))) is None:
            self._record({"kind": "command", "path": " ".join(undo), "argv": undo})
        return proc


def undo_all(manifest: Path, dry_run: bool = False, say: Callable[[str], None] = print) -> int:
    """Undo every entry of ``manifest`` (newest first), then remove the manifest; returns the number of actions."""
    if not manifest.is_file():
        say(f"nothing to uninstall: no manifest at {manifest}")
        return 0
    journal = Journal(manifest, dry_run=True, say=say)
    entries = journal.entries
    holders = {str(p) for p in [manifest.parent, *manifest.parent.parents]}
    late = [e for e in entries if e["kind"] == "dir" and e["path"] in holders]
    actions = 0
    for entry in reversed([e for e in entries if e not in late]):
        actions += _undo(entry, dry_run, say)
        if not dry_run:
            entries.remove(entry)
            journal.dry_run = False
            journal.save()
            journal.dry_run = True
    say(f"{'would remove' if dry_run else 'remove'} {manifest}")
    if not dry_run:
        manifest.unlink()
        shutil.rmtree(manifest.parent / BACKUP_DIR, ignore_errors=True)
    for entry in reversed(late):
        actions += _undo(entry, dry_run, say)
    return actions + 1


def _undo(entry: dict[str, Any], dry_run: bool, say: Callable[[str], None]) -> int:
    path = Path(entry["path"])
    kind = entry["kind"]
    prefix = "would " if dry_run else ""
    if kind == "command":
        say(f"{prefix}run {' '.join(entry['argv'])}")
        if not dry_run:
            with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                subprocess.run(entry["argv"], capture_output=True, timeout=60)
        return 1
    if kind in ("file", "symlink"):
        backup = entry.get("backup")
        if backup:
            say(f"{prefix}restore {path} (your version from before the install)")
            if not dry_run:
                shutil.copy2(backup, path)
            return 1
        if path.is_symlink() or path.exists():
            say(f"{prefix}remove {path}")
            if not dry_run:
                path.unlink()
            return 1
        return 0
    if kind == "tree":
        if path.exists():
            say(f"{prefix}remove {path}/")
            if not dry_run:
                shutil.rmtree(path)
            return 1
        return 0
    if kind == "dir":
        if not path.is_dir():
            return 0
        cache = path / "__pycache__"
        if cache.is_dir() and all(p.suffix == ".pyc" for p in cache.iterdir()):
            # bytecode the host's Python compiled from our files goes with them
            say(f"{prefix}remove {cache}/")
            if not dry_run:
                shutil.rmtree(cache)
        leftovers = [p.name for p in path.iterdir() if not (dry_run and p.name == "__pycache__")]
        if leftovers and not dry_run:
            say(f"kept {path}: it holds files the installer did not add ({', '.join(sorted(leftovers)[:5])})")
            return 0
        say(f"{prefix}remove folder {path}")
        if not dry_run:
            path.rmdir()
        return 1
    if kind == "ini":
        return _undo_ini(entry, path, dry_run, say)
    say(f"skipped an unknown manifest entry: {entry}")
    return 0


def _undo_ini(entry: dict[str, Any], path: Path, dry_run: bool, say: Callable[[str], None]) -> int:
    if not path.is_file():
        return 0
    prefix = "would " if dry_run else ""
    data = path.read_bytes()
    untouched = sha256_bytes(data) == entry.get("written_sha256")
    section, key, previous = entry["section"], entry["key"], entry.get("previous")
    if untouched and entry.get("file_created"):
        say(f"{prefix}remove {path}")
        if not dry_run:
            path.unlink()
        return 1
    if untouched and entry.get("original"):
        say(f"{prefix}restore {path} as it was before the install")
        if not dry_run:
            atomic_write(path, Path(entry["original"]).read_bytes(), path.stat().st_mode & 0o777)
        return 1
    # The host rewrote the file since: change our key back and leave the rest as it is now.
    text = data.decode("utf-8")
    if previous is None:
        text = kritarc.remove_key(text, section, key, drop_empty_section=bool(entry.get("section_created")))
        say(f"{prefix}remove [{section}] {key} from {path}")
    else:
        text = kritarc.set_value(text, section, key, previous)
        say(f"{prefix}set [{section}] {key}={previous} in {path} (its value before the install)")
    if not dry_run:
        atomic_write(path, text.encode("utf-8"), path.stat().st_mode & 0o777)
    return 1
