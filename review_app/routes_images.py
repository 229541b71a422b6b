"""Routes for an item's images (8-bit preview PNG, full-resolution identifier-free DICOM) and the
background preparation of the images an annotator opens next (:mod:`review_app.prefetch`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import Response

from review_app.images import ImageUnavailable, resolve_cache_path
from review_app.prefetch import WarmJob
from review_app.storage import QueueItem
from review_app.targets import images_of
from review_app.web_context import WebContext


def warm_jobs(cache_root: Path, items: Iterable[QueueItem]) -> list[WarmJob]:
    """Per item, in order: the images the viewer opens (the target's: preview and DICOM) first,
    then the other thumbnails of the exam and the prior (preview only)."""
    jobs: list[WarmJob] = []
    for item in items:
        images = images_of(item)
        for image in sorted(images, key=lambda img: not img.get("target")):
            try:
                path = resolve_cache_path(cache_root, image.get("cache_path"))
            except ImageUnavailable:
                continue  # the page says "not preprocessed"; its request answers 404 with the reason
            jobs.append(WarmJob(path, str(image.get("image_key", "")), dicom=bool(image.get("target"))))
    return jobs


def add_image_routes(app: FastAPI, ctx: WebContext) -> None:
    def image_response(item_id: int, position: int, render: Callable[[Path, dict], bytes],
                       media_type: str) -> Response:
        """``render(path, image)`` of the item's image at ``position`` as ``media_type``, or a plain 404."""
        with ctx.factory() as session:
            item = session.get(QueueItem, item_id)
        images = images_of(item) if item is not None else []
        if not 0 <= position < len(images):
            return Response("no such image", status_code=404, media_type="text/plain")
        try:
            data = render(resolve_cache_path(ctx.home.cache, images[position].get("cache_path")), images[position])
        except ImageUnavailable as exc:
            return Response(str(exc), status_code=404, media_type="text/plain")
        return Response(data, media_type=media_type, headers={"Cache-Control": "private, max-age=3600"})

    @app.get("/items/{item_id}/images/{position}.png")
    def item_image(request: Request, item_id: int, position: int):
        ctx.require_user(request)
        return image_response(item_id, position, lambda path, _image: ctx.images.preview(path), "image/png")

    @app.get("/items/{item_id}/images/{position}.dcm")
    def item_dicom(request: Request, item_id: int, position: int):
        """The full-resolution 16-bit image as an identifier-free DICOM for the viewer (review_app.viewer)."""
        ctx.require_user(request)
        return image_response(item_id, position, lambda path, image: ctx.images.dicom(path, image["image_key"]),
                              "application/dicom")
