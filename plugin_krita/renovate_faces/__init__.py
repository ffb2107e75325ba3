"""Renovate Faces for Krita 5.1 and 5.2: restores faces with HiFaceGAN through the local Renovate Faces server.

Inside Krita this registers the extension (the "Renovate Faces" action) and the docker. Outside Krita (tests,
linters) importing the package does nothing, so its pure modules (:mod:`.pixels`, :mod:`.core`) stay importable.
A missing dependency (pyzmq, msgpack, the copied client) is reported when the action runs, with what to install,
instead of breaking Krita's start-up.
"""

try:
    from krita import Krita
except ImportError:  # not inside Krita
    Krita = None

if Krita is not None and Krita.instance() is not None:
    from .docker import register as _register_docker
    from .extension import RenovateFacesExtension

    Krita.instance().addExtension(RenovateFacesExtension(Krita.instance()))
    _register_docker()
