"""The one walk of a ``dicom/`` folder, shared by the catalogue and preprocessing.

Every entry under the folder is returned — nothing is skipped silently: regular files (dotfiles
included) are candidates; DICOMDIR index files, dangling or looping symlinks, symlinked folders,
named pipes/sockets/devices and folders that cannot be listed come back with a ``problem`` code,
so the caller quarantines them with a reason. Names are kept as the bytes the file system holds
(``os.fsencode``), so a name that is not valid UTF-8 is stored losslessly and never crashes.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

# problem code -> what it means (the catalogue's REASONS carry the user-facing advice)
PROBLEMS = ("dicomdir", "dangling_symlink", "symlink_loop", "symlinked_folder", "not_regular_file",
            "unreadable_folder")


@dataclass(frozen=True)
class Entry:
    rel: bytes                 # path relative to the walked folder's parent, e.g. b"dicom/a/b.dcm"
    problem: str | None = None  # None: a regular file to read
    detail: str = ""

    def path(self, base: Path) -> str:
        """Absolute path (surrogate-escaped str: round-trips any byte name on POSIX)."""
        return os.fsdecode(os.path.join(os.fsencode(str(base)), self.rel))

    @property
    def display(self) -> str:
        """Human-readable relative path (undecodable bytes as \\x escapes) — local use only, PHI."""
        return self.rel.decode("utf-8", "backslashreplace")


def _classify_link(full: bytes) -> tuple[str | None, str]:
    try:
        st = os.stat(full)  # follows the link
    except FileNotFoundError:
        return "dangling_symlink", "symlink target does not exist"
    except OSError as exc:
        if exc.errno == 40:  # ELOOP
            return "symlink_loop", "symlink loop"
        return "dangling_symlink", type(exc).__name__
    if stat.S_ISDIR(st.st_mode):
        return "symlinked_folder", "symlink to a folder (not followed: it could loop or count files twice)"
    if not stat.S_ISREG(st.st_mode):
        return "not_regular_file", "symlink to a pipe, socket or device"
    return None, ""


def walk_dicom(batch_root: str | os.PathLike, folder: str = "dicom") -> list[Entry]:
    """Every entry under ``<batch_root>/<folder>``, sorted by its byte path (deterministic)."""
    base = os.fsencode(str(batch_root))
    root = os.path.join(base, os.fsencode(folder))
    if not os.path.isdir(root):
        raise FileNotFoundError(f"{os.fsdecode(root)} does not exist: a batch folder needs a {folder}/ subfolder")
    out: list[Entry] = []
    stack = [os.fsencode(folder)]
    while stack:
        rel_dir = stack.pop()
        try:
            with os.scandir(os.path.join(base, rel_dir)) as it:
                names = sorted((e.name, e) for e in it)
        except OSError as exc:
            out.append(Entry(rel_dir, "unreadable_folder", type(exc).__name__))
            continue
        for name, entry in names:
            rel = os.path.join(rel_dir, name)
            try:
                mode = entry.stat(follow_symlinks=False).st_mode
            except OSError as exc:
                out.append(Entry(rel, "not_regular_file", type(exc).__name__))
                continue
            if stat.S_ISLNK(mode):
                problem, detail = _classify_link(os.path.join(base, rel))
                out.append(Entry(rel, problem, detail) if problem else _file_entry(rel, name))
            elif stat.S_ISDIR(mode):
                stack.append(rel)
            elif stat.S_ISREG(mode):
                out.append(_file_entry(rel, name))
            else:
                out.append(Entry(rel, "not_regular_file", "named pipe, socket or device"))
    return sorted(out, key=lambda e: e.rel)


def _file_entry(rel: bytes, name: bytes) -> Entry:
    if name.upper() == b"DICOMDIR":
        return Entry(rel, "dicomdir", "a DICOMDIR media index, not an image")
    return Entry(rel)
