"""The review page of one target (a breast or an image): its images once, then every flagged
task of it — reasons, evidence, reads and history per task — each with its own decision form."""

from __future__ import annotations

import json
import secrets

from sqlalchemy.orm import Session

from review_app.consensus import DISPUTED, can_adjudicate, needs_double_read, reads_of
from review_app.decisions import history
from review_app.queue import PATHOLOGY_SOURCES
from review_app.reports import ReportIndex, highlight
from review_app.storage import QueueItem, User
from review_app.targets import images_of, target_items
from review_app.wording import CLASS_NAMES, class_keys, target_title


def report_texts(reports: ReportIndex, item: QueueItem) -> list[dict]:
    """The study's reports with this task's evidence (and its other statements) highlighted."""
    texts = []
    related = json.loads(item.related_spans or "[]")
    for report in reports.reports(item.batch, item.accession_key):
        # the mined span belongs to one report row; other reports of the study are searched
        own = item.report_row is None or item.report_row == report.row
        start, end = (item.span_start, item.span_end) if own else (None, None)
        others = tuple((s, e) for row, s, e in related if row == report.row)
        # without a mined span, search only a whole evidence sentence: a bare word ("benign") can
        # sit in the other breast's sentence, and a pathology label's evidence is not in the report
        search = item.evidence if (own and item.source not in PATHOLOGY_SOURCES and item.evidence
                                   and len(item.evidence.split()) >= 4) else None
        texts.append({"reader_level": report.reader_level, "study_date": report.study_date,
                      "segments": highlight(report.text, search, start, end, others)})
    return texts


def task_view(session: Session, reports: ReportIndex, user: User, item: QueueItem, *, focused: bool,
              double_read_tiers: frozenset[int]) -> dict:
    """What the page shows of one task; a blinded double read hides the other read and the history."""
    reads = reads_of(session, item.id)
    double = needs_double_read(item, double_read_tiers)
    blinded = double and item.status == "open"
    my_read = next((r for r in reads if r.user_id == user.id), None)
    can_decide = (item.status != DISPUTED or can_adjudicate(user)) and my_read is None
    return {
        "item": item, "focused": focused, "history": [] if blinded else history(session, item.id),
        "reasons": [r for r in item.reasons.split(";") if r], "classes": class_keys(item.task),
        "class_names": CLASS_NAMES.get(item.task, {}), "decision_id": secrets.token_hex(16),
        "pathology": item.evidence if item.source in PATHOLOGY_SOURCES else None, "blinded": blinded,
        "double": double, "reads": [] if blinded else reads, "n_reads": len(reads), "my_read": my_read,
        "can_decide": can_decide, "reports": report_texts(reports, item),
    }


def target_context(session: Session, reports: ReportIndex, user: User, item: QueueItem,
                   double_read_tiers: frozenset[int]) -> dict:
    """The page of ``item``'s target with ``item``'s task focused (the keys act on it)."""
    tasks = [task_view(session, reports, user, t, focused=t.id == item.id, double_read_tiers=double_read_tiers)
             for t in target_items(session, item)]
    if not any(t["focused"] for t in tasks):  # an inactive row, opened from "my decisions"
        tasks.insert(0, task_view(session, reports, user, item, focused=True, double_read_tiers=double_read_tiers))
    images = images_of(item)
    return {
        # one URL per target's images (its first task's), so the browser's cache serves them for every task
        "item": item, "tasks": tasks, "image_item": tasks[0]["item"].id, "title": target_title(item.target_level, item.breast_key),
        "n_open": sum(t["item"].status != "decided" for t in tasks), "images": images,
        "report_problem": reports.problem(item.batch),
        "current_images": [(i, img) for i, img in enumerate(images) if img.get("exam", "current") == "current"],
        "prior_images": [(i, img) for i, img in enumerate(images) if img.get("exam") == "prior"],
    }
