"""What the boot tests need around fdtgen beyond :mod:`fdtgen.debian` (Debian's
arm64 kernel and busybox, fetched with apt; module order; the cpio archive):

* :mod:`.initramfs` the ``/init`` that reports what the guest sees
* :mod:`.guest`     run QEMU, read the console, parse what ``/init`` reports
"""
