"""mini-MIAS (Mammographic Image Analysis Society, 322 digitised MLO films, 1024x1024 8-bit PGM).

Documented layout (the database's README): ``mdbNNN.pgm`` images and ``Info.txt``, one line per
abnormality: ``REFNUM BG CLASS [SEVERITY X Y RADIUS]`` — BG is the background tissue (F fatty,
G fatty-glandular, D dense-glandular), CLASS one of CALC CIRC SPIC MISC ARCH ASYM NORM, SEVERITY
B or M. Films come in left/right pairs of one woman (mdb001/mdb002, ...).

Labels given: ``malignancy`` (any M row -> 1; B or NORM -> 0); view MLO for every film.
Not given: BI-RADS assessment; density — the F/G/D tissue class is not the ACR A–D composition,
so it is not mapped (the summary says so). Laterality is not in Info.txt: it is read from the
pixels (the chest wall is where the tissue mass is; the side is recorded in the import map).
"""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np

from curation.importers.common import CohortWriter, ImportError_, wrap_pixels

FORMAT = "mias"
_LINE = re.compile(r"^(mdb\d{3})\s+([FGD])\s+(CALC|CIRC|SPIC|MISC|ARCH|ASYM|NORM)(?:\s+([BM]))?(?:\s+(.*))?$")


def parse_info(text: str) -> tuple[dict[str, list[tuple[str, str, str | None]]], list[tuple[int, str]]]:
    """{refnum: [(tissue, class, severity)]} and (line number, reason) for lines that are not rows."""
    rows: dict[str, list] = {}
    bad = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        m = _LINE.match(line)
        if not m:
            if number > 1 or line.lower().startswith("mdb"):
                bad.append((number, "not a 'REFNUM BG CLASS [SEVERITY X Y RADIUS]' line"))
            continue
        ref, tissue, cls, severity = m.group(1), m.group(2), m.group(3), m.group(4)
        if cls != "NORM" and severity is None:
            bad.append((number, f"{cls} row without severity B/M"))
            continue
        rows.setdefault(ref, []).append((tissue, cls, severity))
    return rows, bad


def side_from_pixels(img: np.ndarray) -> str | None:
    """"L" when the tissue mass is on the left half (chest wall left = left breast by storage convention)."""
    small = cv2.resize(img, (128, 128), interpolation=cv2.INTER_AREA)
    u8 = cv2.normalize(small, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    _, fg = cv2.threshold(u8, 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    left, right = float(fg[:, :64].sum()), float(fg[:, 64:].sum())
    if max(left, right) == 0 or abs(left - right) < 0.05 * (left + right):
        return None
    return "L" if left > right else "R"


def import_mias(src: Path, out: Path) -> dict:
    src, w = Path(src), CohortWriter(Path(out), FORMAT)
    infos = sorted(src.rglob("Info.txt")) or sorted(src.rglob("info.txt"))
    if not infos:
        raise ImportError_(f"{src}: no Info.txt (the mini-MIAS label file) found")
    rows, bad = parse_info(infos[0].read_text(encoding="latin-1"))
    for number, reason in bad:
        w.skip(f"Info.txt line {number}", f"unparseable: {reason}")
    images = {p.stem.lower(): p for p in sorted(src.rglob("*.pgm"))}
    for ref in sorted(set(rows) - set(images)):
        w.skip(ref, "listed in Info.txt, no image")
    w.notes.append("density not imported: MIAS tissue class F/G/D is not the ACR A-D composition")
    w.notes.append("laterality read from the pixels (Info.txt gives none); view MLO for every film")
    for ref, path in sorted(images.items()):
        if ref not in rows:
            w.skip(path.name, "no Info.txt row")
            continue
        img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if img is None or img.ndim != 2:
            w.skip(path.name, "unreadable PGM")
            continue
        side = side_from_pixels(img)
        if side is None:
            w.skip(path.name, "laterality undecided from the pixels")
            continue
        number = int(ref[3:])
        patient = w.pid("patient", str((number + 1) // 2))
        accession = w.pid("accession", str((number + 1) // 2))
        malignant = "1" if any(sev == "M" for _, _, sev in rows[ref]) else "0"
        ds = wrap_pixels(img, w, patient=patient, accession=accession, image=w.pid("image", ref),
                         laterality=side, view="MLO", description="mini-MIAS digitised film")
        w.write_dicom(ds, patient, w.pid("image", ref), f"{path.name} (side {side} from pixels)")
        w.label(accession, side, malignancy=malignant)
    return w.finish()
