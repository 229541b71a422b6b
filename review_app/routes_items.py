"""Routes of the review work: the queue, "next", a target's page, decisions, undo, previous,
"my decisions" and the agreement statistics."""

from __future__ import annotations

from fastapi import FastAPI, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse
from sqlalchemy import func, select

from curation.tasks import TASKS
from review_app.consensus import DISPUTED, agreement
from review_app.decisions import (ConflictError, DecisionError, DecisionRequest, ItemNotFound, next_item_id,
                                  open_items, progress, record_decision)
from review_app.queue import REASON_TIER
from review_app.routes_images import warm_jobs
from review_app.storage import QueueItem, User
from review_app.target_page import target_context
from review_app.targets import group_by_target, next_task_on_target, upcoming_targets
from review_app.web_context import WebContext
from review_app.workflow import batch_progress, my_decisions, previous_item_id, undo_decision


def add_item_routes(app: FastAPI, ctx: WebContext) -> None:
    factory, settings = ctx.factory, ctx.settings

    def warm(items: list[QueueItem], *, urgent: bool = False) -> None:
        if settings.prefetch_targets:  # 0: every image is built when the browser asks for it
            ctx.images.warm(warm_jobs(ctx.home.cache, items), urgent=urgent)

    def render_target(request: Request, user: User, item_id: int, *, message: str | None = None,
                      status_code: int = 200):
        with factory() as session:
            item = session.get(QueueItem, item_id)
            if item is None:
                return ctx.error(request, user, "No such item", f"Queue item {item_id} does not exist.", 404)
            context = target_context(session, ctx.reports, user, item, settings.double_read_tiers)
            # this target's images first (one decode serves a view's preview and its DICOM), then the
            # targets after it, likely next: built while this one is read
            warm([item], urgent=True)
            warm(upcoming_targets(session, item, settings.prefetch_targets, ctx.queue_filter(request)))
        flash = request.session.pop("flash", None)
        if isinstance(flash, dict) and flash.get("item") == item_id:
            message, status_code = flash.get("message"), int(flash.get("status", status_code))
        context.update(user=user, message=message, csrf=ctx.csrf_token(request),
                       saved=request.session.pop("saved", None))
        return ctx.page(request, "item.html", context, status_code)

    @app.get("/queue")
    def queue_page(request: Request, done: int = 0, task: str | None = None, batch: str | None = None,
                   reason: str | None = None):
        user = ctx.require_user(request)
        if task is not None or batch is not None or reason is not None:  # the filter form was sent
            request.session["filter"] = {"task": task if task in TASKS else "",
                                         "batch": batch or "", "reason": reason if reason in REASON_TIER else ""}
        where = ctx.queue_filter(request)
        with factory() as session:
            stats = progress(session)
            targets = group_by_target(open_items(session, where=where))
            batches = batch_progress(session)
            # the first targets are what "Review next item" opens: prepare their images meanwhile
            warm([t.first for t in targets[:settings.prefetch_targets]])
        mine = next((a for a in stats.annotators if a.annotator == user.username), None)
        return ctx.page(request, "queue.html", {
            "user": user, "csrf": ctx.csrf_token(request), "stats": stats, "targets": targets, "mine": mine,
            "done": bool(done), "batches": batches, "saved": request.session.pop("saved", None), "where": where,
            "tasks": list(TASKS), "reasons": list(REASON_TIER)})

    @app.get("/api/progress")
    def progress_json(request: Request):
        ctx.require_user(request)
        with factory() as session:
            stats = progress(session)
        return JSONResponse({
            "items": stats.items, "open": stats.open, "decided": stats.decided,
            "annotators": [{"annotator": a.annotator, "confirm": a.confirm, "correct": a.correct,
                            "unknown": a.unknown, "skip": a.skip} for a in stats.annotators]})

    @app.get("/next")
    def next_item(request: Request):
        user = ctx.require_user(request)
        item_id = next_item_id(factory, user, settings.lease_s, where=ctx.queue_filter(request))
        if item_id is None:
            return RedirectResponse("/queue?done=1", status_code=303)
        with factory() as session:  # started before the browser asks for the page and its images
            warm([session.get(QueueItem, item_id)], urgent=True)
        return RedirectResponse(f"/items/{item_id}", status_code=303)

    @app.get("/items/{item_id}")
    def item_page(request: Request, item_id: int):
        user = ctx.require_user(request)
        return render_target(request, user, item_id)

    @app.post("/items/{item_id}/decision")
    def decide(request: Request, item_id: int, action: str = Form(""), version: int = Form(-1),
               decision_id: str = Form(""), csrf_token_: str = Form("", alias="csrf_token")):
        user = ctx.require_user(request)
        ctx.check_csrf(request, csrf_token_)
        decision, _, label = action.partition(":")
        req = DecisionRequest(item_id=item_id, decision=decision, expected_version=version,
                              decision_id=decision_id, label=label or None)
        try:
            stored = record_decision(factory, user, req, settings.double_read_tiers)
        except ItemNotFound as exc:
            return ctx.error(request, user, "No such item", str(exc), 404)
        except ConflictError as exc:
            # post-redirect-get: the item page shows the conflict once (409); a reload never re-posts
            request.session["flash"] = {"item": item_id, "message": str(exc), "status": 409}
            return RedirectResponse(f"/items/{item_id}?conflict=1", status_code=303)
        except DecisionError as exc:
            return render_target(request, user, item_id, message=f"Not saved: {exc}", status_code=400)
        what = decision if stored is not None or decision == "skip" else "blinded read"
        request.session["saved"] = {"item": item_id, "what": what + (f" → {label}" if label else ""),
                                    "decision_id": stored.decision_id if stored is not None and
                                    stored.annotator == user.username and decision != "skip" else None}
        with factory() as session:  # the same target's next task, on the same page, before another target
            sibling = next_task_on_target(session, user, item_id, ctx.queue_filter(request))
        return RedirectResponse(f"/items/{sibling}" if sibling is not None else "/next", status_code=303)

    @app.post("/decisions/{decision_id}/undo")
    def undo(request: Request, decision_id: str, csrf_token_: str = Form("", alias="csrf_token")):
        user = ctx.require_user(request)
        ctx.check_csrf(request, csrf_token_)
        try:
            reverted = undo_decision(factory, user, decision_id)
        except DecisionError as exc:
            return ctx.error(request, user, "Not undone", str(exc), 400)
        except ConflictError as exc:
            return ctx.error(request, user, "Not undone", "Someone changed this item since your decision: "
                             + str(exc), 409)
        request.session["flash"] = {"item": reverted.item_id, "status": 200,
                                    "message": "Undone: the label is back to what it was before your decision."}
        return RedirectResponse(f"/items/{reverted.item_id}", status_code=303)

    @app.get("/previous")
    def previous(request: Request, current: int | None = None):
        user = ctx.require_user(request)
        with factory() as session:
            item_id = previous_item_id(session, user, current)
        return RedirectResponse(f"/items/{item_id}" if item_id else "/mine", status_code=303)

    @app.get("/mine")
    def mine_page(request: Request):
        user = ctx.require_user(request)
        with factory() as session:
            rows = my_decisions(session, user)
        return ctx.page(request, "mine.html", {"user": user, "csrf": ctx.csrf_token(request), "rows": rows})

    @app.get("/stats")
    def stats_page(request: Request):
        user = ctx.require_user(request)
        with factory() as session:
            pairs = agreement(session)
            disputed = session.scalar(select(func.count()).select_from(QueueItem)
                                      .where(QueueItem.status == DISPUTED, QueueItem.active.is_(True)))
        return ctx.page(request, "stats.html", {"user": user, "csrf": ctx.csrf_token(request), "pairs": pairs,
                                                "disputed": int(disputed or 0),
                                                "tiers": sorted(settings.double_read_tiers)})
