"""The viewer's derivatives of a cache image, built once and ahead of the request.

An item page shows up to eight thumbnails (8-bit previews) and opens one full-resolution
identifier-free DICOM (:mod:`review_app.viewer`). At 3328×2560 each derivative starts with
decoding the 16-bit cache PNG — tenths of a second of CPU — so a cold first open spent most of its
time decoding, nine times over, while the browser waited. Here one decode serves both derivatives,
each file is built by one thread while concurrent requests for it wait (no duplicate work), results
stay in memory (least recently used out), and :meth:`ImageWarmer.warm` builds them in a background
thread for the targets an annotator will open next (the queue page's first targets, the targets
after the one just served), so a first open is usually a cache hit.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from review_app.images import ImageUnavailable, preview_from_pixels, preview_png
from review_app.viewer import dicom_bytes, read_16bit

log = logging.getLogger(__name__)
FileKey = tuple[str, float]


def file_key(path: Path) -> FileKey:
    # the modification time is part of the key: a re-preprocessed image is never served stale
    return str(path), path.stat().st_mtime


class SingleFlightCache:
    """key -> bytes, LRU-bounded; one builder per key at a time, the others wait for its result."""

    def __init__(self, max_items: int):
        self._items: OrderedDict[FileKey, bytes] = OrderedDict()
        self._flights: dict[FileKey, threading.Event] = {}
        self._max = max_items
        self._lock = threading.Lock()

    def cached(self, key: FileKey) -> bool:
        with self._lock:
            return key in self._items

    def begin(self, key: FileKey) -> bool:
        """True when the caller now owns building ``key`` (and must :meth:`finish` it)."""
        with self._lock:
            if key in self._items or key in self._flights:
                return False
            self._flights[key] = threading.Event()
            return True

    def finish(self, key: FileKey, value: bytes | None) -> None:
        with self._lock:
            if value is not None:
                self._items[key] = value
                self._items.move_to_end(key)
                while len(self._items) > self._max:
                    self._items.popitem(last=False)
            event = self._flights.pop(key, None)
        if event is not None:
            event.set()

    def get(self, key: FileKey, build: Callable[[], bytes]) -> bytes:
        while True:
            with self._lock:
                if key in self._items:
                    self._items.move_to_end(key)
                    return self._items[key]
                event = self._flights.get(key)
                if event is None:
                    self._flights[key] = threading.Event()
            if event is None:
                break
            event.wait()  # another thread builds it; if that failed, build it here (and see the error)
        value = None
        try:
            value = build()
            return value
        finally:
            self.finish(key, value)


@dataclass(frozen=True)
class WarmJob:
    path: Path
    image_key: str
    dicom: bool
    """Also build the full-resolution DICOM (the images the viewer opens), not only the preview."""


class ImageWarmer:
    """Urgent jobs (the target being opened) run before the others, in order; the others (targets
    likely next) also wait until no image request has been served for ``quiet_s``, so preparing the
    next breast never competes with the images the annotator is waiting for."""

    def __init__(self, preview_height: int, dicom_items: int = 16, preview_items: int = 256,
                 quiet_s: float = 0.5):
        self.preview_height = preview_height
        self.dicoms = SingleFlightCache(dicom_items)
        self.previews = SingleFlightCache(preview_items)
        self.quiet_s = quiet_s
        self._jobs: queue.PriorityQueue[tuple[int, int, WarmJob]] = queue.PriorityQueue()
        self._order = itertools.count()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._serving = 0
        self._last_served = 0.0
        self._served_lock = threading.Lock()

    def _served(self, build: Callable[[], bytes]) -> bytes:
        with self._served_lock:
            self._serving += 1
        try:
            return build()
        finally:
            with self._served_lock:
                self._serving -= 1
                self._last_served = time.monotonic()

    def dicom(self, path: Path, image_key: str) -> bytes:
        return self._served(lambda: self.dicoms.get(file_key(path), lambda: dicom_bytes(read_16bit(path), image_key)))

    def preview(self, path: Path) -> bytes:
        return self._served(lambda: self.previews.get(file_key(path), lambda: preview_png(path, self.preview_height)))

    def _wait_for_quiet(self) -> None:
        deadline = time.monotonic() + 10 * self.quiet_s  # never starve: a busy server still gets them
        while time.monotonic() < deadline:
            with self._served_lock:
                quiet = self._serving == 0 and time.monotonic() - self._last_served >= self.quiet_s
            if quiet:
                return
            time.sleep(self.quiet_s / 5)

    def warm(self, jobs: Iterable[WarmJob], *, urgent: bool = False) -> int:
        """Queue ``jobs`` for the background thread, in order; returns how many were queued."""
        n = 0
        for job in jobs:
            self._jobs.put((0 if urgent else 1, next(self._order), job))
            n += 1
        if n:
            with self._start_lock:
                if self._thread is None or not self._thread.is_alive():
                    self._thread = threading.Thread(target=self._run, name="review-image-warmer", daemon=True)
                    self._thread.start()
        return n

    def idle(self) -> bool:
        return self._jobs.unfinished_tasks == 0

    def _run(self) -> None:
        while True:
            urgency, _, job = self._jobs.get()
            try:
                if urgency:
                    self._wait_for_quiet()
                self.build(job)
            except (ImageUnavailable, OSError) as exc:  # the request for it will answer 404 with the reason
                log.debug("not prepared ahead: %s", type(exc).__name__)
            finally:
                self._jobs.task_done()

    def build(self, job: WarmJob) -> None:
        """Both derivatives of one file from a single decode; what is cached or in flight is skipped."""
        key = file_key(job.path)
        own_preview = self.previews.begin(key)
        own_dicom = job.dicom and self.dicoms.begin(key)
        if not (own_preview or own_dicom):
            return
        preview = dicom = None
        try:
            pixels = read_16bit(job.path)
            if own_preview:
                preview = preview_from_pixels(pixels, self.preview_height, job.path.name)
            if own_dicom:
                dicom = dicom_bytes(pixels, job.image_key)
        finally:
            if own_preview:
                self.previews.finish(key, preview)
            if own_dicom:
                self.dicoms.finish(key, dicom)
