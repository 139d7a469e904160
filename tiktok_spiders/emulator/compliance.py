"""The Batch Compliance API as documented (2026 reference, section 2).

A task is created with a multipart form (``file_data``: up to 10,000 video or
comment ids, one per line; ``category``: ``video`` or ``comment``), its status
polled (``Processing`` for ``--compliance-polls`` polls, then ``Completed`` or,
at ``--compliance-failed-rate``, ``Failed``), and the ids still available are
downloaded as a plain-text file.  Task ids exceed int64, as the docs' example
does.  What a task finds valid is the corpus at the moment it completes.
"""

from __future__ import annotations

import itertools
import json
import random
import secrets
from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import default as default_policy
from typing import TYPE_CHECKING, Any

from tiktok_spiders import api
from tiktok_spiders.emulator.errors import ApiError

if TYPE_CHECKING:
    from tiktok_spiders.emulator.corpus import Corpus
    from tiktok_spiders.emulator.faults import Faults

MAX_IDS = api.COMPLIANCE_MAX_IDS
CATEGORIES = api.COMPLIANCE_CATEGORIES
PROCESSING, COMPLETED, FAILED = api.TASK_PROCESSING, api.TASK_COMPLETED, api.TASK_FAILED

_task_ids = itertools.count(12_345_678_910_987_654_321 + secrets.randbelow(10**6) * 10**4, 7)


@dataclass
class Task:
    category: str
    ids: list[int]
    polls: int = 0
    status: str = PROCESSING
    valid: list[int] | None = None
    stuck: bool = False


def form_fields(content_type: str, body: bytes) -> dict[str, bytes]:
    """The fields of a ``multipart/form-data`` body (a body without its boundary is not one)."""
    if not content_type.startswith("multipart/form-data") or "boundary=" not in content_type:
        raise ApiError(400, api.INVALID_PARAMS, "Need form-data in Body")
    head = f"Content-Type: {content_type}\r\n\r\n".encode()
    message = BytesParser(policy=default_policy).parsebytes(head + body)
    if not message.is_multipart():
        raise ApiError(400, api.INVALID_PARAMS, "Need form-data in Body")
    fields: dict[str, bytes] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name:
            payload = part.get_payload(decode=True)
            fields[str(name)] = payload if isinstance(payload, bytes) else b""
    return fields


class ComplianceDesk:
    """The three endpoints' state: the tasks created, by id."""

    def __init__(self, corpus: Corpus, faults: Faults, rng: random.Random) -> None:
        self.corpus, self.faults, self.random = corpus, faults, rng
        self.tasks: dict[int, Task] = {}

    def create(self, content_type: str, body: bytes, entry: dict[str, Any]) -> dict[str, Any]:
        fields = form_fields(content_type, body)
        category = fields.get("category", b"").decode("utf-8", "replace").strip()
        if category not in CATEGORIES:
            raise ApiError(400, api.INVALID_PARAMS, f"Invalid category: {category!r} (video or comment)")
        if "file_data" not in fields:
            raise ApiError(400, api.INVALID_PARAMS, "file_data is required")
        lines = [line.strip() for line in fields["file_data"].decode("utf-8", "replace").splitlines()]
        ids = [line for line in lines if line]
        if not ids or not all(line.isdigit() for line in ids):
            raise ApiError(400, api.INVALID_PARAMS, "file_data must hold one numeric id per line")
        if len(ids) > MAX_IDS:
            raise ApiError(400, api.INVALID_PARAMS, f"At most {MAX_IDS} ids per task, not {len(ids)}")
        task_id = next(_task_ids)
        self.tasks[task_id] = Task(category, [int(i) for i in ids])
        entry["body"] = {"category": category, "ids": len(ids)}  # the log never holds the file
        return {"task_id": task_id}

    def _task(self, payload: Any) -> tuple[int, Task]:
        task_id = payload.get("task_id") if isinstance(payload, dict) else None
        if not isinstance(task_id, int) or isinstance(task_id, bool) or task_id not in self.tasks:
            raise ApiError(400, api.INVALID_PARAMS, f"Invalid task_id: {task_id!r}")
        return task_id, self.tasks[task_id]

    def status(self, payload: Any) -> dict[str, Any]:
        _, task = self._task(payload)
        if task.status == PROCESSING:
            if task.stuck or task.polls < self.faults.compliance_polls:  # read now: a test may shorten it
                task.polls += 1
            elif self.random.random() < self.faults.compliance_failed_rate:
                task.status = FAILED
            else:
                task.status = COMPLETED
                valid = self.corpus.video_valid if task.category == "video" else self.corpus.comment_valid
                task.valid = [i for i in task.ids if valid(i)]
        return {"task_status": task.status}

    def download(self, payload: Any) -> tuple[str, str]:
        """The file of valid ids and its content type (``--compliance-download``: as a bad day gives it)."""
        task_id, task = self._task(payload)
        if task.status != COMPLETED or task.valid is None:
            raise ApiError(400, api.INVALID_PARAMS, f"Task {task_id} is {task.status}, not Completed")
        text = "".join(f"{i}\n" for i in task.valid)
        bad = self.faults.compliance_download
        if bad == "empty":
            return "", "text/plain"
        if bad == "foreign":
            return text + "".join(f"{i + 1}\n" for i in task.ids[:3]), "text/plain"
        if bad == "truncated":
            return text[: len(text) // 2 + 3], "text/plain"  # in the middle of an id
        if bad == "half":
            return "".join(f"{i}\n" for i in task.valid[: len(task.valid) // 2]), "text/plain"
        if bad in ("json", "json-as-text"):
            body = json.dumps({"data": {"valid_ids": task.valid}, "error": {"code": "ok", "message": "ok."}})
            return body, "application/json" if bad == "json" else "text/plain"
        return text, "text/plain"

    def forget_tasks(self) -> None:
        """Forget every task, as the API does after a while: their ids become unknown."""
        self.tasks.clear()

    def stall_tasks(self) -> None:
        """Every task not done yet stays Processing for good (the tasks created later do not)."""
        for task in self.tasks.values():
            task.stuck = True
