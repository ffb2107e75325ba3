"""Install the GIMP and Krita plug-ins, their client and the daemon's login item; ``renovate-faces-doctor`` checks them.

from hifacegan_installers import install, uninstall
report = install(home=scratch_home, hosts=["gimp", "krita"], autostart=False)
uninstall(home=scratch_home)
"""

from hifacegan_installers.install import HostResult, InstallReport, install, uninstall
from hifacegan_installers.journal import InstallError

__all__ = ["HostResult", "InstallError", "InstallReport", "install", "uninstall"]
