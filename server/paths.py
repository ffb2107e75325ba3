"""Where the daemon and its clients meet: runtime, config and log folders, the endpoint and the token; how a
client finds, probes and starts the daemon (``server_command``, ``nothing_listens``, ``start_detached``).

Standard library only (the plug-ins copy this file). The folders follow platformdirs' conventions for the app
name ``renovate-faces`` without depending on it:

============  ======================================  ===================================  ===========================
folder        Linux (XDG)                             macOS                                Windows
============  ======================================  ===================================  ===========================
runtime       ``$XDG_RUNTIME_DIR/renovate-faces``     ``~/Library/Caches/TemporaryItems/`` ``%LOCALAPPDATA%\\Temp\\``
              (else ``/run/user/UID/...``, else a     ``renovate-faces``                   ``renovate-faces``
              private folder in the temp dir)
config        ``$XDG_CONFIG_HOME/renovate-faces``     ``~/Library/Application Support/``   ``%APPDATA%\\renovate-faces``
                                                      ``renovate-faces``
log           ``$XDG_STATE_HOME/renovate-faces/log``  ``~/Library/Logs/renovate-faces``    ``%LOCALAPPDATA%\\``
                                                                                           ``renovate-faces\\Logs``
============  ======================================  ===================================  ===========================

``RENOVATE_FACES_RUNTIME_DIR``, ``RENOVATE_FACES_CONFIG_DIR`` and ``RENOVATE_FACES_LOG_DIR`` override each folder
(tests use them); ``RENOVATE_FACES_ENDPOINT`` overrides the endpoint.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

APP = "renovate-faces"
TOKEN_FILE = "token"
SERVER_CONFIG_FILE = "server.json"
SOCKET_FILE = "server.sock"
LOCK_FILE = "server.lock"
INFO_FILE = "server-info.json"
LOG_FILE = "server.log"
STDERR_LOG_FILE = "server-stderr.log"
STDERR_LOG_LIMIT = (
    1 << 20
)  # bytes; a detached server stops copying its log to stderr there (see server/logs.py)
DEFAULT_TCP_PORT = 47315
LOOPBACK_HOST = "127.0.0.1"  # where a tcp endpoint listens by default: this machine only
LOOPBACK_HOSTS = frozenset({LOOPBACK_HOST, "localhost", "[::1]", "::1"})
IPC_PATH_LIMIT = 100  # sun_path is 104 bytes on macOS and 108 on Linux, minus the terminating NUL


class PathsError(Exception):
    """A folder or file the daemon and client need is unusable; the message says what to fix."""


def _home() -> Path:
    return Path(os.path.expanduser("~"))


def _env_dir(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value).expanduser() if value else None


def _windows_dir(var: str, fallback: str) -> Path:
    value = os.environ.get(var)
    return Path(value) if value else _home() / fallback


def config_dir() -> Path:
    override = _env_dir("RENOVATE_FACES_CONFIG_DIR")
    if override:
        return override
    if sys.platform == "win32":
        return _windows_dir("APPDATA", "AppData/Roaming") / APP
    if sys.platform == "darwin":
        return _home() / "Library" / "Application Support" / APP
    return (_env_dir("XDG_CONFIG_HOME") or _home() / ".config") / APP


def log_dir() -> Path:
    override = _env_dir("RENOVATE_FACES_LOG_DIR")
    if override:
        return override
    if sys.platform == "win32":
        return _windows_dir("LOCALAPPDATA", "AppData/Local") / APP / "Logs"
    if sys.platform == "darwin":
        return _home() / "Library" / "Logs" / APP
    return (_env_dir("XDG_STATE_HOME") or _home() / ".local" / "state") / APP / "log"


def runtime_dir() -> Path:
    override = _env_dir("RENOVATE_FACES_RUNTIME_DIR")
    if override:
        return override
    if sys.platform == "win32":
        return _windows_dir("LOCALAPPDATA", "AppData/Local") / "Temp" / APP
    if sys.platform == "darwin":
        return _home() / "Library" / "Caches" / "TemporaryItems" / APP
    xdg = _env_dir("XDG_RUNTIME_DIR")
    if xdg and xdg.is_dir():
        return xdg / APP
    run_user = Path(f"/run/user/{os.getuid()}")
    if run_user.is_dir() and os.access(run_user, os.W_OK):
        return run_user / APP
    return Path(tempfile.gettempdir()) / f"{APP}-{os.getuid()}"


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (mode 0700) or check that an existing one is ours and private; returns it."""
    created = not path.exists()
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if os.name == "posix":
        st = path.stat()
        if st.st_uid != os.getuid():
            raise PathsError(
                f"{path} belongs to another user (uid {st.st_uid}); remove it or set RENOVATE_FACES_RUNTIME_DIR."
            )
        if st.st_mode & 0o077:
            if not created:  # never loosen or tighten a folder someone else made: ask instead
                raise PathsError(f"{path} is open to other users; run: chmod 700 '{path}'")
            os.chmod(path, 0o700)  # mkdir's mode is masked by the umask
    return path


def ensure_log_dir() -> Path:
    """The log folder, owner-only (0700): created so, or tightened if it is ours (older versions made it 0755;
    logs name files and jobs of the user)."""
    path = log_dir()
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if os.name == "posix":
        st = path.stat()
        if st.st_uid == os.getuid() and st.st_mode & 0o077:
            os.chmod(path, 0o700)
    return path


def open_private_append(path: Path) -> Any:
    """``path`` opened for appending (binary), created 0600 and made 0600 if it was not."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    if os.name == "posix":
        os.fchmod(fd, 0o600)
    return os.fdopen(fd, "ab")


def open_stderr_log() -> tuple[Any, Path]:
    """Where a detached server's stderr goes: ``<log>/server-stderr.log``, appended to and never truncated (a
    server still running may write it: truncating it under that server left a sparse file of NULs), and
    rotated by renaming to ``.1`` once over ``STDERR_LOG_LIMIT`` (a writer keeps its renamed file)."""
    path = ensure_log_dir() / STDERR_LOG_FILE
    with contextlib.suppress(OSError):
        if path.stat().st_size > STDERR_LOG_LIMIT:
            os.replace(path, path.with_name(STDERR_LOG_FILE + ".1"))
    return open_private_append(path), path


def log_tail(path: Path, lines: int) -> list[str]:
    """The last ``lines`` lines of a log file (what a server that failed to start wrote); [] if unreadable."""
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-lines:]
    except OSError:
        return []


def server_config() -> dict[str, Any]:
    """``<config>/server.json``, written by the installer: ``{"command": [...], "endpoint": "..."}``; {} if absent."""
    path = config_dir() / SERVER_CONFIG_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise PathsError(f"{path} is not readable JSON ({exc}); fix or delete it.") from None
    if not isinstance(data, dict):
        raise PathsError(f"{path} must hold a JSON object; fix or delete it.")
    return data


def default_endpoint() -> str:
    """The endpoint both sides use unless told otherwise.

    ``RENOVATE_FACES_ENDPOINT``, else ``endpoint`` in ``server.json``, else an ``ipc://`` socket in the runtime
    folder (Linux, macOS) or ``tcp://127.0.0.1:47315`` (Windows, or when that socket path would be too long).
    """
    override = os.environ.get("RENOVATE_FACES_ENDPOINT")
    if override:
        return override
    configured = server_config().get("endpoint")
    if isinstance(configured, str) and configured:
        return configured
    if sys.platform == "win32":
        return loopback_endpoint()
    sock = runtime_dir() / SOCKET_FILE
    if len(str(sock).encode()) > IPC_PATH_LIMIT:
        return loopback_endpoint()
    return f"ipc://{sock}"


def loopback_endpoint(port: int = DEFAULT_TCP_PORT) -> str:
    """``tcp://127.0.0.1:PORT``: a tcp endpoint only this machine can reach."""
    return f"tcp://{LOOPBACK_HOST}:{port}"


def is_loopback(endpoint: str) -> bool:
    """Whether a ``tcp://HOST:PORT`` endpoint's host is one of :data:`LOOPBACK_HOSTS`."""
    return endpoint.startswith("tcp://") and endpoint[len("tcp://") :].rsplit(":", 1)[0] in LOOPBACK_HOSTS


def ipc_path(endpoint: str) -> Path | None:
    """The socket file behind an ``ipc://`` endpoint, else None."""
    return Path(endpoint[len("ipc://") :]) if endpoint.startswith("ipc://") else None


def token_path() -> Path:
    return config_dir() / TOKEN_FILE


def _write_private_new(path: Path, text: str) -> bool:
    """Create ``path`` (0600) holding ``text`` atomically; False if it already exists."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o600)
        try:
            os.link(tmp, path)  # atomic and fails if the file exists: the daemon and a client may race here
        except FileExistsError:
            return False
        except (OSError, NotImplementedError):
            if path.exists():
                return False
            os.replace(tmp, path)
            tmp = ""
        return True
    finally:
        if tmp:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def read_token(create: bool = False) -> str:
    """The shared secret every request carries, from ``<config>/token`` (mode 0600).

    With ``create=True`` a missing token file is created with a fresh random token.
    """
    path = token_path()
    if create and not path.exists():
        _write_private_new(path, secrets.token_hex(32) + "\n")
    try:
        if os.name == "posix" and path.stat().st_mode & 0o077:
            raise PathsError(f"{path} is readable by other users; run: chmod 600 '{path}'")
        token = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise PathsError(
            f"No token file at {path}: start the server once (hifacegan-server) to create it."
        ) from None
    except OSError as exc:
        raise PathsError(f"Cannot read the token file {path} ({exc.strerror}).") from None
    if len(token) < 16:
        raise PathsError(f"The token in {path} is too short; delete the file and restart the server.")
    return token


def start_detached(command: list[str]) -> tuple[subprocess.Popen, Path]:
    """Start ``command`` (the daemon) to outlive its starter and terminal: own session, no stdin or stdout, stderr
    appended to the server's stderr log; returns the process and that log's path (OSError if it cannot start).
    The one spawner: ``Client.ensure_running`` and ``hifacegan-server`` without ``--foreground`` use it."""
    detach: dict[str, Any] = {"start_new_session": True}
    if os.name == "nt":
        flags = (
            subprocess.CREATE_NEW_PROCESS_GROUP | subprocess.DETACHED_PROCESS | subprocess.CREATE_NO_WINDOW
        )
        detach = {"creationflags": flags}
    err, errfile = open_stderr_log()
    with err:
        proc = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, close_fds=True, **detach
        )
    return proc, errfile


def server_command() -> list[str] | None:
    """How to start the daemon: ``command`` in ``<config>/server.json`` (written by the installer), else
    ``hifacegan-server`` on PATH, else ``python -m hifacegan_server`` when this interpreter can import it
    (None: none of them)."""
    command = server_config().get("command")  # PathsError when server.json cannot be read
    if isinstance(command, list) and command and all(isinstance(c, str) for c in command):
        return list(command)
    if isinstance(command, str) and command:
        return [command]
    found = shutil.which("hifacegan-server")
    if found:
        return [found]
    with contextlib.suppress(ImportError, ValueError):
        if importlib.util.find_spec("hifacegan_server.daemon") is not None:
            return [sys.executable, "-m", "hifacegan_server"]
    return None


def nothing_listens(endpoint: str) -> str | None:
    """A sentence when nothing listens at ``endpoint`` (a connect on the ipc socket file or the tcp port is
    refused), else None (something listens, or the probe cannot tell: ZeroMQ then tries and times out)."""
    sock = ipc_path(endpoint)
    try:
        if sock is not None:
            if not hasattr(socket, "AF_UNIX"):
                return None
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
                probe.settimeout(1.0)
                probe.connect(str(sock))
        elif endpoint.startswith("tcp://"):
            host, _, port = endpoint[len("tcp://") :].rpartition(":")
            socket.create_connection((host.strip("[]"), int(port)), timeout=1.0).close()
    except (FileNotFoundError, ConnectionRefusedError):
        stale = " (its socket file is left over from a server that stopped)" if sock and sock.exists() else ""
        return (
            f"The renovate-faces server is not running: nothing listens at {endpoint}{stale}; start it "
            f"with 'hifacegan-server' (its log is {log_dir() / LOG_FILE})."
        )
    except (OSError, ValueError):
        pass  # a slow or unusual endpoint
    return None
