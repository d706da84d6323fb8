"""Read a placement manifest file for ``fdtgen verify --manifest``.

:func:`load_manifest` reads the file, bounded, and holds it to the one model
of the manifest, :func:`fdtgen.manifest.from_json`: the document
``fdtgen build --manifest`` writes is the document verify reads. Any problem
is one :class:`~fdtgen.errors.ManifestError` line naming the file, the key and
the rule. The model brings pydantic, so :mod:`fdtgen.checks` and the command
import this module only when a manifest is given.
"""

from __future__ import annotations

import os
import stat

from fdtgen.errors import ManifestError
from fdtgen.files import file_kind
from fdtgen.manifest import Manifest, from_json
from fdtgen.units import MiB, fmt_size

MANIFEST_MAX_SIZE = 16 * MiB  # a manifest is KiB; this only stops a runaway read


def load_manifest(path: str) -> Manifest:
    """The manifest in the JSON file at ``path``, held to the model.

    The file is stat'ed first: anything but a regular file (a FIFO, a device,
    a directory) or one over :data:`MANIFEST_MAX_SIZE` is refused before a
    byte is read, and the read itself stops past the cap.
    """
    too_big = f"over the {fmt_size(MANIFEST_MAX_SIZE)} a manifest may be"
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            raise ManifestError(
                path,
                "",
                f"not a regular file ({file_kind(st.st_mode)}; "
                "a manifest is a JSON file: fdtgen build --manifest)",
            )
        if st.st_size > MANIFEST_MAX_SIZE:
            raise ManifestError(path, "", f"{st.st_size} bytes is {too_big}")
        # O_NONBLOCK: a path swapped for a FIFO since the stat cannot block the open
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise ManifestError(path, "", "not a regular file")
            os.set_blocking(fd, True)
            raw = f.read(MANIFEST_MAX_SIZE + 1)
    except OSError as e:
        raise ManifestError(path, "", f"cannot read manifest: {e.strerror or e}") from None
    if len(raw) > MANIFEST_MAX_SIZE:  # it grew after the stat
        raise ManifestError(path, "", f"the file is {too_big}")
    return from_json(raw, path)
