"""Files in and out: bounded reads of regular files, atomic or direct writes.

Every file fdtgen reads (config, template, kernel, initrd, blob, manifest)
is stat'ed before a byte is read: anything but a regular file is refused (a
FIFO would block, ``/dev/zero`` never ends), and so is a file over the
reader's cap. The file is opened with ``O_NONBLOCK`` and checked again on the
open descriptor, so a path swapped for a FIFO in between cannot block either;
the read itself stops one byte past the cap. Standard input (``-``) is read
the same way, up to the cap plus one byte.

Every output is classified before anything is written (:func:`write_outputs`):

* ``-`` is standard output;
* a character device or a FIFO (``/dev/null``, ``/dev/stdout``, a named pipe)
  is opened and written directly, never replaced;
* a regular file, a new path, or a symlink to either is written to a
  temporary file in the target's directory (``.NAME.fdtgen-PID-N.tmp``),
  synced and renamed over the target: a symlink stays a symlink and its
  target is replaced;
* a directory, socket or block device is refused.

Outputs naming the same file, or naming one of the command's inputs, are
refused before anything is written. Temporary files left by a killed fdtgen
(their PID no longer runs and they are ten minutes old) are removed the next
time fdtgen writes to their directory.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import sys
import time
from collections.abc import Callable, Sequence
from typing import BinaryIO, NamedTuple, TypeAlias

from fdtgen.errors import FdtgenError, OutputError
from fdtgen.units import fmt_size

CHUNK = 1 << 20  # bytes per read while streaming a file

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)

# What an output holds: its bytes, or a function that writes them to an open file
# (a decompressed kernel is streamed, never held whole).
Payload: TypeAlias = bytes | Callable[[BinaryIO], None]

STALE_AGE = 600  # seconds: a temporary file this old, of no running process, is left over
TEMP_RE = re.compile(r"\..*\.fdtgen-([0-9]+)-[0-9]+\.tmp")


def file_kind(mode: int) -> str:
    """What a non-regular ``st_mode`` is, in words (``a FIFO``)."""
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def too_large(what: str, size: int, limit: int, option: str = "") -> str:
    """The one-line rule for an input over its cap."""
    how = f" (raise it with {option})" if option else ""
    return f"{what}: too large: {size:#x} bytes, over the {fmt_size(limit)} cap{how}"


def open_regular(
    path: str,
    what: str,
    limit: int,
    error: Callable[[str], FdtgenError],
    option: str = "",
    noun: str = "",
) -> tuple[BinaryIO, int]:
    """``path`` opened for reading and its size, if it is a regular file of at
    most ``limit`` bytes; otherwise ``error(line)`` is raised, before a byte is
    read. The line starts with ``what``; ``option`` is the option that raises
    the cap, ``noun`` what the file is ("cannot read NOUN: ...")."""
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            raise error(f"{what}: not a regular file ({file_kind(st.st_mode)})")
        if st.st_size > limit:
            raise error(too_large(what, st.st_size, limit, option))
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        raise error(f"{what}: cannot read{' ' + noun if noun else ''}: {e.strerror}") from None
    try:
        st = os.fstat(fd)  # the file opened, not the one stat'ed
        if not stat.S_ISREG(st.st_mode):
            raise error(f"{what}: not a regular file ({file_kind(st.st_mode)})")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb"), st.st_size
    except BaseException:
        os.close(fd)
        raise


def read_regular(
    path: str,
    what: str,
    limit: int,
    error: Callable[[str], FdtgenError],
    option: str = "",
    noun: str = "",
) -> bytes:
    """The bytes of regular file ``path``, at most ``limit`` of them (see :func:`open_regular`)."""
    f, _ = open_regular(path, what, limit, error, option, noun)
    with f:
        return read_capped(f, what, limit, error, option)


def read_capped(
    f: BinaryIO, what: str, limit: int, error: Callable[[str], FdtgenError], option: str = ""
) -> bytes:
    """Everything left in ``f`` (a file or standard input), at most ``limit`` bytes:
    one byte more is read only to tell that the input is over the cap."""
    try:
        data = f.read(limit + 1)
    except OSError as e:
        raise error(f"{what}: cannot read: {e.strerror}") from None
    if len(data) > limit:
        how = f" (raise it with {option})" if option else ""
        raise error(f"{what}: too large: more than the {fmt_size(limit)} cap{how}")
    return data


# Output -----------------------------------------------------------------------------------


class Target(NamedTuple):
    """Where one output goes: ``how`` is ``stdout``, ``direct`` (a character
    device or FIFO, written in place) or ``atomic`` (``real``, the path after
    symlinks, replaced by a renamed temporary file). ``ident`` is the file's
    ``(st_dev, st_ino)`` when it exists, else its real path."""

    path: str
    how: str
    real: str
    ident: object
    char_device: bool = False


def target(path: str, parents: dict[str, str] | None = None) -> Target:
    """How ``path`` is written; an :class:`OutputError` if it cannot be.

    ``parents`` keeps each directory's real path across the calls of one write
    (build-many writes thousands of files into one directory): a path whose
    last part is no symlink is that real path joined with its name, found by
    one ``lstat`` rather than ``realpath``'s one per component.
    """
    if path == "-":
        return Target(path, "stdout", path, None)
    head, name = os.path.split(path)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    except OSError as e:
        raise OutputError(f"{path}: output: cannot write: {e.strerror}") from None
    if name in ("", ".", "..") or (st is not None and stat.S_ISLNK(st.st_mode)):
        real = os.path.realpath(path)
        try:
            st = os.stat(path)
        except FileNotFoundError:
            st = None
        except OSError as e:
            raise OutputError(f"{path}: output: cannot write: {e.strerror}") from None
    else:
        parents = {} if parents is None else parents
        top = parents.get(head)
        if top is None:
            top = parents[head] = os.path.realpath(head or ".")
        real = os.path.join(top, name)
    if st is None:
        return Target(path, "atomic", real, real)  # a new file (or a dangling link's target)
    ident = (st.st_dev, st.st_ino)
    if stat.S_ISREG(st.st_mode):
        return Target(path, "atomic", real, ident)
    if stat.S_ISCHR(st.st_mode) or stat.S_ISFIFO(st.st_mode):
        return Target(path, "direct", path, ident, stat.S_ISCHR(st.st_mode))
    if stat.S_ISDIR(st.st_mode):
        raise OutputError(f"{path}: output: is a directory")
    raise OutputError(
        f"{path}: output: is {file_kind(st.st_mode)}; an output must be a regular file, "
        "a character device, a FIFO or -"
    )


def input_ident(path: str) -> tuple[object, ...]:
    """What an input path may be recognised by: its ``(st_dev, st_ino)`` and real path."""
    real = os.path.realpath(path)
    try:
        st = os.stat(path)
    except OSError:
        return (real,)
    return ((st.st_dev, st.st_ino), real)


def check_targets(targets: Sequence[Target], inputs: Sequence[tuple[str, str]] = ()) -> None:
    """Refuse outputs that name the same file, or an input ``(role, path)``, as one line.

    ``-`` and character devices (``/dev/null``) may be named more than once.
    """
    seen: dict[object, Target] = {}
    for t in targets:
        if t.how == "stdout" or t.char_device:
            continue
        other = seen.get(t.ident) or seen.get(t.real)
        if other is not None:
            raise OutputError(
                f"{t.path}: output: the same file as output {other.path!r}; "
                "give each output its own path"
            )
        seen[t.ident] = seen[t.real] = t
    for role, path in inputs:
        if not path or path == "-":
            continue
        for key in input_ident(path):
            hit = seen.get(key)
            if hit is not None:
                raise OutputError(
                    f"{hit.path}: output: is the {role} input {path!r}; "
                    "refusing to overwrite an input"
                )


def write_outputs(
    outputs: Sequence[tuple[str, Payload]],
    inputs: Sequence[tuple[str, str]] = (),
    *,
    sync_each: bool = True,
) -> None:
    """Write every output, in order, or fail with one :class:`OutputError` line.

    Every path is classified and checked against the others and the
    ``inputs`` first; then every temporary file is written and synced (with
    ``sync_each`` false, one ``os.sync()`` for all: thousands of files, as
    build-many writes); only then are they renamed into place, and direct
    outputs written, in the order given. A failure removes the temporary files
    not yet renamed. A replaced file keeps its permissions. A payload may be a
    function that writes the bytes to the file it is given (its
    :class:`FdtgenError` fails the command as any other error does).
    """
    parents: dict[str, str] = {}
    targets = [target(path, parents) for path, _ in outputs]
    check_targets(targets, inputs)
    for parent in sorted({os.path.dirname(t.real) for t in targets if t.how == "atomic"}):
        remove_stale_temps(parent or ".")
    staged: dict[int, str] = {}
    current = "-"
    try:
        for i, (t, (_, data)) in enumerate(zip(targets, outputs, strict=True)):
            if t.how == "atomic":
                staged[i] = _stage(t, data, sync_each)
        if staged and not sync_each:
            os.sync()
        for i, (t, (_, data)) in enumerate(zip(targets, outputs, strict=True)):
            current = t.path
            if t.how == "atomic":
                os.replace(staged.pop(i), t.real)
            elif t.how == "direct":
                _write_direct(t.path, data)
            else:
                _put(sys.stdout.buffer, data)
                sys.stdout.buffer.flush()
        if sync_each:  # the renames themselves, so they survive a power loss
            for parent in {os.path.dirname(t.real) or "." for t in targets if t.how == "atomic"}:
                _sync_directory(parent)
    except BrokenPipeError:
        raise
    except OSError as e:
        raise OutputError(f"{current}: output: cannot write: {e.strerror}") from None
    finally:
        for tmp in staged.values():
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def _sync_directory(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _put(f: BinaryIO, data: Payload) -> None:
    if isinstance(data, bytes):
        f.write(data)
    else:
        data(f)


def _write_direct(path: str, data: Payload) -> None:
    """Write ``data`` to the device or FIFO ``path`` as it is: no create, no rename."""
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    if not isinstance(data, bytes):
        with os.fdopen(fd, "wb") as f:
            data(f)
        return
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def _stage(t: Target, data: Payload, sync: bool) -> str:
    """``data`` in a new temporary file beside ``t.real``; returns its name."""
    parent, name = os.path.split(t.real)
    mode = 0o644  # new files: rw-r--r-- less the umask
    keep = None
    if t.ident != t.real:  # it existed when classified: keep its permissions
        with contextlib.suppress(OSError):
            keep = mode = os.stat(t.real).st_mode & 0o7777
    pid = os.getpid()
    for attempt in range(100):
        short = name.encode()[:160].decode(errors="ignore")  # 160 bytes leave room in NAME_MAX
        tmp = os.path.join(parent, f".{short}.fdtgen-{pid}-{attempt}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
            break
        except FileExistsError:
            continue
        except OSError as e:
            raise OutputError(f"{t.path}: output: cannot write: {e.strerror}") from None
    else:
        raise OutputError(f"{t.path}: output: cannot create a temporary file beside it")
    try:
        try:
            if keep is not None:  # as it was, not less the umask
                os.fchmod(fd, keep)
            if isinstance(data, bytes):
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
            else:  # a writer of its own: give it a file object on the same descriptor
                with os.fdopen(os.dup(fd), "wb") as f:
                    data(f)
            if sync:
                os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise OutputError(f"{t.path}: output: cannot write: {e.strerror}") from None
    except BaseException:  # a payload function's own error: no temporary file stays
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return tmp


def remove_stale_temps(directory: str) -> None:
    """Remove this program's temporary files in ``directory`` whose writer is gone.

    A temporary file is named ``.NAME.fdtgen-PID-N.tmp``; it is stale when no
    process ``PID`` runs (``kill(PID, 0)`` finds none) and it was last written
    :data:`STALE_AGE` seconds ago or more. The age keeps a writer in another
    PID namespace (a container sharing the directory), whose PID means nothing
    here, from losing a file it is about to rename: fdtgen renames its files
    within seconds of writing them. Files of running processes, younger ones,
    and anything else, are left alone.
    """
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return
    me = os.getpid()
    old = time.time() - STALE_AGE
    for entry in entries:
        m = TEMP_RE.fullmatch(entry.name)
        if m is None or int(m.group(1)) == me:
            continue
        with contextlib.suppress(OSError):
            if not entry.is_file(follow_symlinks=False) or _running(int(m.group(1))):
                continue
            if entry.stat(follow_symlinks=False).st_mtime > old:
                continue
            os.unlink(entry.path)


def _running(pid: int) -> bool:
    if pid <= 0:
        return True  # never one of ours: leave it
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):  # no such process (or no such PID at all)
        return False
    except PermissionError:  # another user's process
        return True
    return True
