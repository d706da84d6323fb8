"""What the boot tests need around fdtgen: Debian's arm64 kernel and busybox,
an initramfs built here, and a QEMU run whose console is read into a report.

* :mod:`.debian`    fetch and cache the arm64 packages with apt, unpack them
* :mod:`.modinfo`   module dependencies from each module's ``.modinfo``
* :mod:`.initramfs` a cpio newc archive with busybox, the modules and ``/init``
* :mod:`.guest`     run QEMU, read the console, parse what ``/init`` reports
"""
