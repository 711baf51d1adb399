"""The ``data_export`` job type: write rows to a CSV or JSON file in the export storage.

Payload::

    format    "csv" or "json"                                          (required)
    rows      a list of 0..10,000 JSON objects                         (this, or query)
    query     {"source": "jobs", "status"?: str, "type"?: str, "limit"?: 1..10,000}
    columns   a list of distinct column names                          (optional)
    filename  [A-Za-z0-9._-]{1,100}, not starting with "."            (optional)
    escape_formulas  true (default) or false; CSV only                (optional)

``query`` exports the *submitting owner's* jobs, newest first, with the columns id, type,
priority, status, created_at, completed_at; it never sees another owner's jobs. Without
``columns`` a ``rows`` export has the union of the rows' keys in first-seen order; a
``query`` export may only choose among its fixed columns. In CSV, missing values are empty
and nested values are written as compact JSON. A CSV text cell (header included) that a
spreadsheet would run as a formula, one starting with ``=``, ``+``, ``-``, ``@``, a tab or a
carriage return, gets a leading ``'`` (OWASP's advice against CSV injection); numbers are
left alone, and ``"escape_formulas": false`` writes text exactly as given. A JSON export is
a list of objects holding exactly the chosen columns (missing ones as null).

The file is saved through Django's storage API, in ``storages["exports"]`` (see
``draconic.storage``), as ``<owner id>/<filename>`` (default ``export-<job id>.<format>``;
the format's extension is appended when missing). With the default storage that is
``DRACONIC_EXPORT_DIR/<owner id>/<filename>``, written to a temporary file in the same
directory and renamed into place, so a reader never sees a half-written export and a retry
simply replaces it. Its owner downloads it with ``GET /jobs/{id}/export``.

Result: ``{"path", "filename", "storage_name", "rows", "bytes", "format", "sha256",
"columns"}``: ``path`` is the file's absolute path on the server (the storage name when the
storage has no local paths), ``storage_name`` its name in the export storage.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage

from draconic.storage import export_storage
from jobs.models import Job, JobStatus, Priority
from jobs.types import Handler, HandlerError, JobContext, register

MAX_ROWS = 10_000
MAX_COLUMNS = 200
MAX_COLUMN_CHARS = 255
FORMATS = ("csv", "json")
FILENAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}")
JOB_COLUMNS = ("id", "type", "priority", "status", "created_at", "completed_at")
QUERY_FIELDS = frozenset({"source", "status", "type", "limit"})
KNOWN_FIELDS = frozenset({"format", "rows", "query", "columns", "filename", "escape_formulas"})
#: What makes a spreadsheet read a text cell as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
#: Rows between two cancellation checks.
CHUNK = 1000


def _rows_error(rows: Any) -> str | None:
    if not isinstance(rows, list):
        return "must be a list of objects"
    if len(rows) > MAX_ROWS:
        return f"holds {len(rows)} rows; the limit is {MAX_ROWS}"
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            return f"item {index} is not an object"
    return None


def _query_errors(query: Any) -> dict[str, str]:
    if not isinstance(query, dict):
        return {"payload.query": "must be an object"}
    errors: dict[str, str] = {}
    unknown = sorted(set(query) - QUERY_FIELDS)
    if unknown:
        errors["payload.query"] = f"unknown fields: {', '.join(unknown)[:200]}"
    if query.get("source") != "jobs":
        errors["payload.query.source"] = 'must be "jobs"'
    if "status" in query and query["status"] not in JobStatus.values:
        errors["payload.query.status"] = f"must be one of {', '.join(JobStatus.values)}"
    if "type" in query and not (isinstance(query["type"], str) and 1 <= len(query["type"]) <= 64):
        errors["payload.query.type"] = "must be a job type name of 1 to 64 characters"
    limit = query.get("limit", MAX_ROWS)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_ROWS:
        errors["payload.query.limit"] = f"must be an integer from 1 to {MAX_ROWS}"
    return errors


def _columns_error(columns: Any, *, allowed: tuple[str, ...] | None) -> str | None:
    if not isinstance(columns, list) or not 1 <= len(columns) <= MAX_COLUMNS:
        return f"must be a list of 1 to {MAX_COLUMNS} column names"
    for index, column in enumerate(columns):
        if not isinstance(column, str) or not 1 <= len(column) <= MAX_COLUMN_CHARS:
            return f"item {index} must be a string of 1 to {MAX_COLUMN_CHARS} characters"
        if allowed is not None and column not in allowed:
            return f"{column[:100]!r} is not a column of the jobs query ({', '.join(allowed)})"
    if len(set(columns)) != len(columns):
        return "must not repeat a column"
    return None


def _source_errors(payload: Mapping[str, Any]) -> dict[str, str]:
    if ("rows" in payload) == ("query" in payload):
        return {"payload": "give exactly one of rows and query"}
    if "rows" in payload:
        error = _rows_error(payload["rows"])
        return {"payload.rows": error} if error else {}
    return _query_errors(payload["query"])


def export_filename(payload: Mapping[str, Any], job: Job) -> str:
    """The file's name: the payload's (with the format's extension ensured) or a default."""
    extension = f".{payload['format']}"
    name = payload.get("filename") or f"export-{job.id}{extension}"
    return name if name.endswith(extension) else f"{name}{extension}"


@register("data_export")
class DataExportHandler(Handler):
    """Exports rows, or the owner's jobs, to a file; see the module docstring."""

    def validate_payload(self, payload: Mapping[str, Any]) -> dict[str, str]:
        errors = _source_errors(payload)
        unknown = sorted(set(payload) - KNOWN_FIELDS)
        if unknown:
            errors["payload"] = f"unknown fields: {', '.join(unknown)[:200]}"
        if payload.get("format") not in FORMATS:
            errors["payload.format"] = f"must be one of {', '.join(FORMATS)}"
        if "columns" in payload:
            allowed = JOB_COLUMNS if "query" in payload else None
            error = _columns_error(payload["columns"], allowed=allowed)
            if error:
                errors["payload.columns"] = error
        filename = payload.get("filename")
        if filename is not None and not (
            isinstance(filename, str) and FILENAME.fullmatch(filename)
        ):
            errors["payload.filename"] = (
                "must be 1 to 100 of the characters A-Z a-z 0-9 . _ - and not start with a dot"
            )
        if not isinstance(payload.get("escape_formulas", True), bool):
            errors["payload.escape_formulas"] = "must be true or false"
        return errors

    def run(self, ctx: JobContext) -> Any:
        errors = self.validate_payload(ctx.payload)
        if errors:  # stored before a validation change, or written around the API
            raise HandlerError(f"invalid payload: {errors}", permanent=True)
        payload = ctx.payload
        rows = payload["rows"] if "rows" in payload else _owner_jobs(ctx.job, payload["query"])
        columns = payload.get("columns") or _columns_of(rows, payload)
        ctx.log("exporting", rows=len(rows), format=payload["format"], columns=len(columns))
        content = _render(
            ctx, rows, columns, payload["format"], escape=payload.get("escape_formulas", True)
        )
        name, path = _save(ctx.job, export_filename(payload, ctx.job), content)
        result = {
            "path": path,
            "filename": PurePosixPath(name).name,
            "storage_name": name,
            "rows": len(rows),
            "bytes": len(content),
            "format": payload["format"],
            "sha256": hashlib.sha256(content).hexdigest(),
            "columns": columns,
        }
        ctx.log("export written", path=result["path"], bytes=result["bytes"])
        return result


def _owner_jobs(job: Job, query: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The export job's owner's jobs matching ``query``, newest first, as plain rows."""
    jobs = Job.objects.filter(owner_id=job.owner_id)
    if "status" in query:
        jobs = jobs.filter(status=query["status"])
    if "type" in query:
        jobs = jobs.filter(type=query["type"])
    values = jobs.order_by("-created_at", "id").values_list(*JOB_COLUMNS)[
        : query.get("limit", MAX_ROWS)
    ]
    return [
        {
            "id": str(id_),
            "type": type_,
            "priority": str(Priority(priority).label),
            "status": status,
            "created_at": created.isoformat(),
            "completed_at": completed.isoformat() if completed else None,
        }
        for id_, type_, priority, status, created, completed in values
    ]


def _columns_of(rows: Iterable[Mapping[str, Any]], payload: Mapping[str, Any]) -> list[str]:
    if "query" in payload:
        return list(JOB_COLUMNS)
    seen: dict[str, None] = {}
    for row in rows:
        seen.update(dict.fromkeys(row))
    return list(seen)


def _render(
    ctx: JobContext, rows: list[Any], columns: list[str], fmt: str, *, escape: bool = True
) -> bytes:
    """The file's bytes (UTF-8). Checks for a cancel every ``CHUNK`` rows."""
    picked: list[dict[str, Any]] = []
    for start in range(0, len(rows), CHUNK):
        ctx.check_cancelled()
        picked.extend({c: row.get(c) for c in columns} for row in rows[start : start + CHUNK])
    if fmt == "json":
        return json.dumps(picked, ensure_ascii=False, indent=1).encode()
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([_defused(c) if escape else c for c in columns])
    writer.writerows([_csv_cell(row[c], escape) for c in columns] for row in picked)
    return out.getvalue().encode()


def _csv_cell(value: Any, escape: bool) -> Any:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if isinstance(value, bool):
        return "true" if value else "false"
    if escape and isinstance(value, str):
        return _defused(value)
    return value


def _defused(text: str) -> str:
    """``text`` with a leading ``'`` if a spreadsheet would run it as a formula."""
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


def _save(job: Job, filename: str, content: bytes) -> tuple[str, str]:
    """Save ``content`` in the export storage as ``<owner id>/<filename>`` (the default
    storage writes it atomically and replaces an earlier file of that name). Returns the
    stored name and the file's local path (the name again if the storage has no paths)."""
    if PurePosixPath(filename).name != filename or filename.startswith("."):
        # The filename pattern already forbids this; belt and braces.
        raise HandlerError(
            f"refusing to write outside the export directory: {filename}", permanent=True
        )
    storage = export_storage()
    name = storage.save(f"{job.owner_id}/{filename}", ContentFile(content))
    if isinstance(storage, FileSystemStorage):
        return name, str(Path(storage.path(name)).resolve())
    return name, name  # a storage without local files (an object store, memory)
