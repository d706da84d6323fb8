"""Debian's arm64 kernel for trying a DTB under QEMU: ``fdtgen debian-kernel``.

* :mod:`.sources`   the Debian archives the machine's apt already uses
* :mod:`.kit`       fetch and cache the arm64 packages with apt, unpack them
* :mod:`.modinfo`   module dependencies from each module's ``.modinfo``
* :mod:`.initramfs` a cpio newc archive with busybox, the modules and ``/init``
"""
