"""Preprocessing speed and tissue kept, on full-size (3328 x 2560, 16-bit) mammograms, one thread.

Measured side by side, per image, interleaved, median of ``--repeats`` runs, in CPU time of
this single-threaded process (OpenCV and BLAS pinned to one thread):

* floor     pydicom decode (``dcmread`` + ``pixel_array``) + one ``cv2.INTER_AREA`` resize of the
            whole image to height H — the least any pipeline must do;
* ours      ``read_dicom`` + ``preprocess`` (LUTs, mask, flip, crop, resize, pad) -> the 16-bit output
            (x * 65535, what the cache stores; the float32 [0, 1] view is one multiply away);
* ours+png  the same plus writing the cache entry (16-bit PNG + JSON sidecar) to disk, as the runner does:
            each write a new file (the runner names entries by sha256 and never writes over one; on ext4,
            renaming over an existing file also starts its writeback and costs several ms more); also set
            against "floor+write" (the floor's output written the same way);
* nyu       decode + the NYU-style crop (``img > 0``, 100 binary erosions, largest component,
            100 binary dilations, scipy.ndimage as in the public code) + one resize of its crop.

Overlap (``--overlap``): the whole sequence of images, one after the other as a runner worker does,
with the cache write inline or handed to one background thread while the next image is decoded
(zlib and libpng release the GIL) — wall and CPU seconds of the sequence; the CPU cost cannot shrink,
only the wall time where a core is idle.

Writers (``--writers N``): the cache write alone, on each image's own output, N times each, interleaved:
``png16`` (:mod:`curation.preprocess.png16`, what ``write_entry`` uses at level 0) against libpng's
``cv2.imwrite`` at level 0, no filter (the writer before), both to new files, both + the JSON sidecar.

Tissue kept: for each image, whether each method's crop keeps every generator lesion and how
many burned-in labels survive (inside the box and not zeroed).

Images: ``--source phantom`` (curation.preprocess.phantom, 14-bit, non-zero noisy background,
two labels) or ``--source demo`` (the demo generator at --height 3328, if installed).

    python bench/bench_preprocess.py --images 4 --repeats 3 --height 2048 [--source demo] [--out results.json]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pydicom  # noqa: E402
from scipy import ndimage  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from curation.decode import read_dicom  # noqa: E402
from curation.preprocess.cache import _SIDECAR_FIELDS, write_entry  # noqa: E402
from curation.preprocess.config import PreprocessConfig  # noqa: E402
from curation.preprocess.phantom import write_phantom  # noqa: E402
from curation.preprocess.steps import box_to_output, preprocess, resize_to_height  # noqa: E402

cv2.setNumThreads(1)


def floor(path: str, height: int) -> np.ndarray:
    arr = pydicom.dcmread(path).pixel_array
    h, w = arr.shape
    return cv2.resize(arr, (round(w * height / h), height), interpolation=cv2.INTER_AREA)


_SERIAL = iter(range(1 << 30))


def _fresh(kind: str, path: str) -> str:
    """A new cache name per write, as in the runner (one entry per sha256, never rewritten)."""
    return f"{kind}/{Path(path).stem}-{next(_SERIAL)}.png"


def floor_write(path: str, height: int, cache_root: Path, png_compression: int) -> None:
    """The floor plus the same cache write, so the write's own cost can be set apart."""
    out = floor(path, height)
    write_entry(cache_root, _fresh("floor", path), out, dict.fromkeys(_SIDECAR_FIELDS), png_compression)


def ours(path: str, config: PreprocessConfig):
    return preprocess(read_dicom(path), config)


def ours_png(path: str, config: PreprocessConfig, cache_root: Path):
    """What the runner does per new image: decode, preprocess, write the cache entry to disk."""
    res = ours(path, config)
    write_entry(cache_root, _fresh("bench", path), res.image16, dict.fromkeys(_SIDECAR_FIELDS),
                config.png_compression)
    return res


def libpng_write(cache_root: Path, rel: str, image: np.ndarray) -> None:
    """The cache write as it was before png16: cv2.imwrite at level 0, no filter, to a temporary name, renamed."""
    target = cache_root / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.stem}.", suffix=".png")
    os.close(fd)
    cv2.imwrite(tmp, image, [cv2.IMWRITE_PNG_COMPRESSION, 0, cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_NONE])
    os.replace(tmp, target)
    (target.with_suffix(".json")).write_text(json.dumps(dict.fromkeys(_SIDECAR_FIELDS), sort_keys=True))


def sequence(paths: list[str], config: PreprocessConfig, cache_root: Path, mode: str) -> tuple[float, float]:
    """(wall s, CPU s) of the whole sequence: ``floor``, ``inline`` (decode, preprocess, write, next) or
    ``thread`` (each write handed to one background thread, overlapping the next image's decode)."""
    from concurrent.futures import ThreadPoolExecutor

    c, t = time.process_time(), time.perf_counter()
    if mode == "floor":
        for p in paths:
            floor(p, config.height)
    elif mode == "inline":
        for p in paths:
            ours_png(p, config, cache_root)
    else:
        with ThreadPoolExecutor(1) as writer:
            pending = []
            for p in paths:
                res = ours(p, config)
                pending.append(writer.submit(write_entry, cache_root, _fresh("seq", p), res.image16,
                                             dict.fromkeys(_SIDECAR_FIELDS), config.png_compression))
            for f in pending:
                f.result()
    return time.perf_counter() - t, time.process_time() - c


def nyu_box(arr: np.ndarray) -> tuple[int, int, int, int]:
    """The public NYU crop (Wu et al. 2019, crop_mammogram.py): threshold > 0, erode 100, largest
    component, dilate 100, bounding box."""
    mask = arr > 0
    mask = ndimage.binary_erosion(mask, iterations=100)
    labels, n = ndimage.label(mask)
    if n == 0:
        return 0, 0, arr.shape[1], arr.shape[0]
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    mask = labels == int(np.argmax(sizes))
    mask = ndimage.binary_dilation(mask, iterations=100)
    ys = np.nonzero(mask.any(axis=1))[0]
    xs = np.nonzero(mask.any(axis=0))[0]
    return int(xs[0]), int(ys[0]), int(xs[-1]) + 1, int(ys[-1]) + 1


def nyu(path: str, height: int):
    arr = pydicom.dcmread(path).pixel_array
    x0, y0, x1, y1 = nyu_box(arr)
    return resize_to_height(arr[y0:y1, x0:x1], height), (x0, y0, x1, y1)


def _timed(fn, *args):
    """CPU seconds of this (single-threaded) process: on a shared machine wall time mostly measures
    the neighbours; the wall time is kept too, for the record."""
    c, t = time.process_time(), time.perf_counter()
    out = fn(*args)
    _WALL.append(time.perf_counter() - t)
    return time.process_time() - c, out


_WALL: list[float] = []


def _inside(b, crop):
    return b[0] >= crop[0] and b[1] >= crop[1] and b[2] <= crop[2] and b[3] <= crop[3]


def _overlaps(b, crop):
    return not (b[2] <= crop[0] or b[0] >= crop[2] or b[3] <= crop[1] or b[1] >= crop[3])


def make_images(source: str, n: int, folder: Path) -> list[tuple[str, list, list]]:
    """(path, lesion boxes, label boxes) per image."""
    out = []
    if source == "phantom":
        for i in range(n):
            p = folder / f"ph{i}.dcm"
            lat = "LR"[i % 2]
            truth = write_phantom(p, 3328, 2560, lat, seed=i, bits_stored=14, window=(8192, 16384))
            out.append((str(p), truth.lesion_boxes, truth.text_boxes))
        return out
    import pandas as pd

    from curation.demo_cohort.cohort import generate_cohort

    patients = max(1, -(-n // 4))
    generate_cohort("hmi", patients, 0, folder / "hmi", height=3328, defects=False)
    truth = pd.read_parquet(folder / "hmi" / "truth.parquet")
    images = truth[truth["level"] == "image"].head(n)
    for r in images.itertuples():
        out.append((str(folder / "hmi" / r.file), [list(b) for b in (r.lesion_boxes if r.lesion_boxes is not None else [])],
                    [list(b) for b in (r.text_boxes if r.text_boxes is not None else [])]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--height", type=int, default=2048)
    ap.add_argument("--source", choices=["phantom", "demo"], default="phantom")
    ap.add_argument("--nyu-repeats", type=int, default=1, help="the NYU crop takes seconds; 1 run is enough")
    ap.add_argument("--writers", type=int, default=0, metavar="N",
                    help="also time the cache write alone N times per image: png16 vs libpng (cv2.imwrite)")
    ap.add_argument("--overlap", type=int, default=0, metavar="N",
                    help="also time the whole sequence N times: write inline vs in a background thread")
    ap.add_argument("--out", type=Path, default=None, help="write the per-image results as JSON here")
    args = ap.parse_args()
    config = PreprocessConfig(height=args.height)
    warnings.simplefilter("ignore")

    with tempfile.TemporaryDirectory() as tmp:
        images = make_images(args.source, args.images, Path(tmp))
        rows = []
        for path, lesions, labels in images:
            floor(path, args.height), ours(path, config)  # warm the page cache and imports
            t_floor, t_ours, t_png, t_fw = [], [], [], []
            for _ in range(args.repeats):  # interleaved: background load hits all methods alike
                t_floor.append(_timed(floor, path, args.height)[0])
                t_ours.append(_timed(ours, path, config)[0])
                t_png.append(_timed(ours_png, path, config, Path(tmp))[0])
                t_fw.append(_timed(floor_write, path, args.height, Path(tmp), config.png_compression)[0])
            t_nyu = [_timed(nyu, path, args.height) for _ in range(args.nyu_repeats)]
            res = ours(path, config)
            nyu_crop = t_nyu[0][1][1]
            kept_ours = 0
            for b in labels:  # a label survives ours only if it overlaps the crop and is not zeroed
                if _overlaps(b, res.crop):
                    x0, y0, x1, y1 = box_to_output(b, res.crop, res.content_width, res.image.shape[0], res.flipped)
                    reg = res.image[max(0, int(y0)):int(np.ceil(y1)), max(0, int(x0)):int(np.ceil(x1))]
                    kept_ours += int(reg.size > 0 and float(reg.max()) > 0)
            f = statistics.median(t_floor)
            t_w16, t_wlib = [], []
            for _ in range(args.writers):
                t_w16.append(_timed(write_entry, Path(tmp), _fresh("w16", path), res.image16,
                                    dict.fromkeys(_SIDECAR_FIELDS), 0)[0])
                t_wlib.append(_timed(libpng_write, Path(tmp), _fresh("wlib", path), res.image16)[0])
            rows.append({
                "image": Path(path).name,
                "floor_ms": 1000 * f, "ours_ms": 1000 * statistics.median(t_ours),
                "ours_png_ms": 1000 * statistics.median(t_png), "floor_write_ms": 1000 * statistics.median(t_fw),
                "ours_png_over_floor_write": statistics.median(t_png) / statistics.median(t_fw),
                **({"write_png16_ms": 1000 * statistics.median(t_w16), "write_libpng_ms": 1000 * statistics.median(t_wlib),
                    "png_bytes": res.image16.nbytes} if args.writers else {}),
                "nyu_ms": 1000 * statistics.median(t for t, _ in t_nyu),
                "ours_over_floor": statistics.median(t_ours) / f, "ours_png_over_floor": statistics.median(t_png) / f,
                "nyu_over_floor": statistics.median(t for t, _ in t_nyu) / f,
                "ours_crop": list(res.crop), "nyu_crop": list(nyu_crop),
                "lesions": len(lesions), "lesions_in_ours": int(sum(_inside(b, res.crop) for b in lesions)),
                "lesions_in_nyu": int(sum(_inside(b, nyu_crop) for b in lesions)),
                "labels": len(labels), "labels_kept_ours": kept_ours,
                "labels_kept_nyu": int(sum(_overlaps(b, nyu_crop) for b in labels)),
                "ours_crop_area_share": (res.crop[2] - res.crop[0]) * (res.crop[3] - res.crop[1]) / (3328 * 2560),
                "nyu_crop_area_share": (nyu_crop[2] - nyu_crop[0]) * (nyu_crop[3] - nyu_crop[1]) / (3328 * 2560),
            })
            r = rows[-1]
            print(f"{r['image']}: floor {r['floor_ms']:.0f} ms | ours {r['ours_ms']:.0f} ms "
                  f"({r['ours_over_floor']:.2f}x) | +write {r['ours_png_ms']:.0f} ms ({r['ours_png_over_floor']:.2f}x; "
                  f"{r['ours_png_over_floor_write']:.2f}x floor+write) | "
                  f"nyu {r['nyu_ms']:.0f} ms ({r['nyu_over_floor']:.1f}x) | lesions kept ours {r['lesions_in_ours']}/"
                  f"{r['lesions']} nyu {r['lesions_in_nyu']}/{r['lesions']} | labels left ours {r['labels_kept_ours']}/"
                  f"{r['labels']} nyu {r['labels_kept_nyu']}/{r['labels']}", flush=True)
        summary = {k: statistics.median(r[k] for r in rows)
                   for k in ("floor_ms", "ours_ms", "ours_png_ms", "nyu_ms", "ours_over_floor",
                             "ours_png_over_floor", "floor_write_ms", "ours_png_over_floor_write", "nyu_over_floor",
                             "write_png16_ms", "write_libpng_ms") if k in rows[0]}
        summary.update({"images": len(rows), "source": args.source, "height": args.height,
                        "load_avg_end": list(os.getloadavg()),
                        "lesions": sum(r["lesions"] for r in rows),
                        "lesions_in_ours": sum(r["lesions_in_ours"] for r in rows),
                        "lesions_in_nyu": sum(r["lesions_in_nyu"] for r in rows),
                        "labels": sum(r["labels"] for r in rows),
                        "labels_kept_ours": sum(r["labels_kept_ours"] for r in rows),
                        "labels_kept_nyu": sum(r["labels_kept_nyu"] for r in rows)})
        if args.overlap:
            paths = [p for p, _, _ in images]
            seq = {m: [] for m in ("floor", "inline", "thread")}
            for _ in range(args.overlap):  # interleaved, like the per-image runs
                for m in seq:
                    seq[m].append(sequence(paths, config, Path(tmp), m))
            summary["overlap"] = {
                f"{m}_{what}_ms_per_image": 1000 * statistics.median(r[i] for r in runs) / len(paths)
                for m, runs in seq.items() for i, what in enumerate(("wall", "cpu"))}
            o = summary["overlap"]
            for what in ("wall", "cpu"):
                for m in ("inline", "thread"):
                    o[f"{m}_over_floor_{what}"] = o[f"{m}_{what}_ms_per_image"] / o[f"floor_{what}_ms_per_image"]
            summary["overlap"]["load_avg"] = list(os.getloadavg())
        print(json.dumps(summary, indent=1))
        if args.out:
            args.out.write_text(json.dumps({"summary": summary, "images": rows}, indent=1))


if __name__ == "__main__":
    main()
