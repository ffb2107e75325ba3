"""The installer against the real hosts: GIMP 3.0 (Debian trixie root) and Krita 5.1 (this machine).

The plug-ins are installed into scratch HOMEs by ``hifacegan_installers.install`` (not copied by hand), then the GIMP and
Krita helpers' real-host tests run against those installed copies: their test functions are imported here and
their ``gimp`` fixture / ``install_plugin`` step are replaced by the installer. On top, ``renovate-faces-doctor``
must see GIMP's registration (pluginrc) and each host's Python importing the client, and the installer's
wheels for the host's own Python (3.13 in trixie) must import inside that host's root.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "krita"))

import krita_harness  # noqa: E402
import test_gimp_plugin as gimp_tests  # noqa: E402
import test_krita_core as krita_tests  # noqa: E402
from conftest import require  # noqa: E402

from hifacegan_installers import install, uninstall  # noqa: E402
from hifacegan_installers.diagnose import Options, run_checks  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


# ---------------------------------------------------------------------------------------------------------
# GIMP 3.0 in the trixie root
# ---------------------------------------------------------------------------------------------------------


def _borrow_fixtures(module, skip: tuple[str, ...] = ()) -> None:
    """Make another test module's fixtures (``server``, ``test_weights``...) resolvable from this module."""
    for name, value in vars(module).items():
        if name not in skip and hasattr(value, "_fixture_function_marker"):
            globals()[name] = value


_borrow_fixtures(gimp_tests, skip=("gimp",))


class InstalledGimp(gimp_tests.Gimp):
    """The GIMP helper's batch runner, on a scratch HOME that ``hifacegan_installers.install`` filled."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.scratch = Path(tempfile.mkdtemp(prefix="rf-installed-gimp-", dir=root / "tmp"))
        self.home = self.scratch / "home"
        self.home.mkdir()
        self.lines: list[str] = []
        self.report = install(self.home, ["gimp"], autostart=False, root=root, say=self.lines.append)
        assert self.report.hosts[0].installed, self.report.to_dict()
        self.plugin_dir = self.report.hosts[0].plugin_dir
        self.config_dir = self.home / ".config" / "renovate-faces"
        self.runs = 0


@pytest.fixture(scope="session")  # session: the GIMP helper's session-scoped `server` fixture asks for it
def gimp(trixie_root: Path):
    host = InstalledGimp(trixie_root)
    yield host
    host.close()


# The GIMP helper's tests, against the installed copy.
test_registered_under_filters_enhance = gimp_tests.test_registered_under_filters_enhance
test_indexed_image_is_refused_with_advice = gimp_tests.test_indexed_image_is_refused_with_advice


def test_installed_gimp_plugin_returns_the_servers_pixels(gimp, server, degraded_face: Path) -> None:
    """The installed plug-in, through its bundled client, writes exactly what the server computes."""
    report, folder = gimp.run({"image": gimp.stage(degraded_face), "args": {"fidelity": 0.3}})
    assert report["status"] == "success", report["error"]
    before = gimp_tests._load_dump(folder, report["source_before"], 4)
    new = gimp_tests._load_dump(folder, report["new_layer"], 4)
    reference, faces = gimp_tests._direct(server, before[:, :, :3], fidelity=0.3)
    assert report["renovated_faces"] == sum(1 for f in faces if f.get("renovated")) == 1
    assert (new[:, :, :3] == reference).all()


def test_gimp_install_is_what_doctor_expects(gimp: InstalledGimp) -> None:
    host = gimp.report.hosts[0]
    assert host.key == "gimp:system" and "GIMP" in host.label
    assert host.python["version"] == "3.13" and host.python["imports"]["client"]["ok"], host.python
    report, _ = gimp.run({"query": True})  # GIMP queries the plug-in and writes pluginrc
    assert report["found"]
    checks = {
        c.name: c for c in run_checks(Options(home=gimp.home, hosts=["gimp"], root=gimp.root, weights=False))
    }
    assert checks["host:gimp:system"].status == "ok" and checks["host:gimp:system"].summary.startswith("GIMP")
    assert checks["plugin:gimp:system"].status == "ok"
    registered = checks["registered:gimp:system"]
    assert registered.status == "ok", registered
    python = checks["python:gimp:system"]
    assert python.status == "ok" and python.detail["version"] == "3.13", python


def test_gimp_doctor_sees_an_unregistered_plugin(gimp: InstalledGimp) -> None:
    pluginrc = gimp.home / ".config/GIMP/3.0/pluginrc"
    require(pluginrc.is_file(), "needs the query run of the previous test")
    saved = pluginrc.read_bytes()
    try:
        pluginrc.write_bytes(saved.replace(b'"plug-in-renovate-faces"', b'"plug-in-something-else"'))
        options = Options(home=gimp.home, hosts=["gimp"], root=gimp.root, weights=False)
        check = next(c for c in run_checks(options) if c.name == "registered:gimp:system")
        assert check.status == "fail" and "gimp-console-3.0 --verbose" in check.fix
    finally:
        pluginrc.write_bytes(saved)


def test_wheels_for_the_hosts_own_python_import_there(trixie_root: Path, tmp_path: Path) -> None:
    """Wheels fetched for trixie's Python 3.13 (this machine runs 3.11) import inside the root, from the
    plug-in folder, before the root's own python3-zmq."""
    scratch = Path(tempfile.mkdtemp(prefix="rf-vendor-", dir=trixie_root / "tmp"))
    try:
        home = scratch / "home"
        home.mkdir()
        report = install(
            home, ["gimp"], autostart=False, root=trixie_root, vendor="always", say=lambda _: None
        )
        host = report.hosts[0]
        offline = [p for p in host.problems if "pip could not fetch" in p]
        require(not offline, f"PyPI is not reachable: {offline}")
        assert not host.problems, host.problems
        assert {"zmq", "msgpack"} <= set(host.vendored), host.vendored
        inside = "/" + str(host.plugin_dir.relative_to(trixie_root))
        for module in ("zmq", "msgpack"):
            info = host.python["imports"][module]
            assert info["ok"] and info["file"].startswith(inside), info
        assert host.python["imports"]["client"]["ok"]
        uninstall(home, say=lambda _: None)
        assert sorted(p.name for p in home.rglob("*")) == [], "uninstall left files behind"
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


# ---------------------------------------------------------------------------------------------------------
# Krita 5.1 on this machine
# ---------------------------------------------------------------------------------------------------------

_borrow_fixtures(krita_tests)


def _install_with_the_installer(pykrita: Path, actions: Path) -> None:
    home = pykrita.parents[3]  # HOME/.local/share/krita/pykrita
    assert pykrita == home / ".local/share/krita/pykrita" and actions == home / ".local/share/krita/actions"
    report = install(home, ["krita"], autostart=False, vendor="never", say=lambda _: None)
    assert report.hosts[0].installed and report.hosts[0].plugin_dir == pykrita / "renovate_faces"


@pytest.fixture(scope="module", autouse=True)
def _krita_profiles_use_the_installer():
    saved = krita_harness.install_plugin
    krita_harness.install_plugin = _install_with_the_installer
    yield
    krita_harness.install_plugin = saved


# The Krita helper's kritarunner tests, against the installed copy.
test_runs_in_krita_5_1 = krita_tests.test_runs_in_krita_5_1
test_result_is_a_new_layer_right_above_the_active_one = (
    krita_tests.test_result_is_a_new_layer_right_above_the_active_one
)
test_faces_change_and_pixels_away_from_faces_do_not = (
    krita_tests.test_faces_change_and_pixels_away_from_faces_do_not
)
test_a_missing_server_is_explained = krita_tests.test_a_missing_server_is_explained


def test_krita_install_is_what_doctor_expects(tmp_path: Path) -> None:
    require(krita_harness.bookworm_krita_missing() is None, str(krita_harness.bookworm_krita_missing()))
    home = tmp_path / "home"
    home.mkdir()
    install(home, ["krita"], autostart=False, say=lambda _: None)
    checks = {c.name: c for c in run_checks(Options(home=home, hosts=["krita"], weights=False))}
    assert (
        checks["host:krita:system"].status == "ok"
        and "5.1" in (checks["host:krita:system"].detail["version"])
    )
    assert checks["plugin:krita:system"].status == "ok"
    assert checks["registered:krita:system"].status == "ok"
    assert checks["python:krita:system"].status == "ok", checks["python:krita:system"]
