"""The ``send_email`` job type: one message through Django's email framework.

Payload::

    to         an address, or a list of 1..50 addresses            (required)
    subject    1..255 characters, no line breaks                   (required)
    body       plain-text body, at most 100 KiB of UTF-8           (optional; default "")
    html_body  an HTML alternative, at most 100 KiB                (optional)
    from_email one address; default settings.DEFAULT_FROM_EMAIL    (optional)
    cc, bcc    an address or a list of addresses                   (optional)

A message without ``body`` is sent with an empty plain-text body: a subject alone is a valid
mail (a reminder, a notification whose subject says it all). ``to``, ``cc`` and ``bcc``
together hold at most 50 addresses. Addresses are bare
(``user@example.com``) and checked with Django's ``EmailValidator``.

The message goes through ``get_connection()``: SMTP in production, the file backend in
development (``EMAIL_BACKEND``, ``EMAIL_FILE_PATH``). A refused recipient or sender, a failed
login or any other 5xx reply is permanent (retrying cannot help); a connection failure or a
4xx reply is retryable. The Message-ID is derived from the job id, so a retried send carries
the same Message-ID and receivers can drop the duplicate.

Result: ``{"recipients": <count>, "message_id": "<...>", "backend": "<dotted path>"}``.
"""

from __future__ import annotations

import re
import smtplib
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.mail.utils import DNS_NAME
from django.core.validators import EmailValidator

from jobs.types import Handler, HandlerError, JobContext, register

MAX_RECIPIENTS = 50
MAX_SUBJECT_CHARS = 255
MAX_BODY_BYTES = 100 * 1024
#: Every character that some mail or Python code treats as a line break.
LINE_BREAKS = re.compile("[\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
KNOWN_FIELDS = frozenset({"to", "cc", "bcc", "subject", "body", "html_body", "from_email"})

_validate_email = EmailValidator()


def _address_error(value: Any) -> str | None:
    if not isinstance(value, str):
        return "is not a string"
    try:
        _validate_email(value)
    except ValidationError:
        return f"{value[:100]!r} is not a valid email address"
    return None


def _addresses(value: Any, *, required: bool) -> tuple[list[str], str | None]:
    """The addresses in ``value`` (one address or a list of them), or an error message."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list):
        return [], "must be an email address or a list of email addresses"
    if required and not items:
        return [], "must name at least one address"
    if len(items) > MAX_RECIPIENTS:
        return [], f"holds {len(items)} addresses; the limit is {MAX_RECIPIENTS}"
    for index, item in enumerate(items):
        error = _address_error(item)
        if error:
            return [], error if isinstance(value, str) else f"item {index}: {error}"
    return list(items), None


def _text_error(value: Any, *, limit_bytes: int) -> str | None:
    if not isinstance(value, str):
        return "must be a string"
    size = len(value.encode("utf-8", errors="surrogatepass"))
    if size > limit_bytes:
        return f"is {size} bytes; the limit is {limit_bytes} bytes"
    return None


def _subject_error(value: Any) -> str | None:
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_SUBJECT_CHARS:
        return f"must be a string of 1 to {MAX_SUBJECT_CHARS} characters"
    if LINE_BREAKS.search(value):
        return "must not contain line breaks"
    return None


def _recipient_errors(payload: Mapping[str, Any]) -> dict[str, str]:
    errors: dict[str, str] = {}
    total = 0
    for field in ("to", "cc", "bcc"):
        if field == "to" and field not in payload:
            errors["payload.to"] = "is required"
            continue
        if field not in payload:
            continue
        found, error = _addresses(payload[field], required=field == "to")
        if error:
            errors[f"payload.{field}"] = error
        total += len(found)
    if not errors and total > MAX_RECIPIENTS:
        errors["payload.to"] = (
            f"to, cc and bcc hold {total} addresses; the limit is {MAX_RECIPIENTS}"
        )
    return errors


@register("send_email")
class SendEmailHandler(Handler):
    """Sends one email; see the module docstring for the payload and the failure policy."""

    def validate_payload(self, payload: Mapping[str, Any]) -> dict[str, str]:
        errors = _recipient_errors(payload)
        unknown = sorted(set(payload) - KNOWN_FIELDS)
        if unknown:
            errors["payload"] = f"unknown fields: {', '.join(unknown)[:200]}"
        subject_error = _subject_error(payload.get("subject"))
        if subject_error:
            errors["payload.subject"] = subject_error
        for field in ("body", "html_body"):
            if field in payload:
                error = _text_error(payload[field], limit_bytes=MAX_BODY_BYTES)
                if error:
                    errors[f"payload.{field}"] = error
        if "from_email" in payload:
            error = _address_error(payload["from_email"])
            if error:
                errors["payload.from_email"] = error
        return errors

    def run(self, ctx: JobContext) -> Any:
        errors = self.validate_payload(ctx.payload)
        if errors:  # stored before a validation change, or written around the API
            raise HandlerError(f"invalid payload: {errors}", permanent=True)
        message = self._message(ctx)
        recipients = message.recipients()
        ctx.log(
            "sending email",
            recipients=len(recipients),
            message_id=message.extra_headers["Message-ID"],
        )
        connection = get_connection(fail_silently=False)
        message.connection = connection
        try:
            message.send()
        except smtplib.SMTPException as exc:
            raise _classify(exc) from exc
        except OSError as exc:  # refused, reset, DNS or timeout: the server may come back
            raise HandlerError(f"cannot reach the mail server: {exc}") from exc
        ctx.log("email sent", recipients=len(recipients))
        return {
            "recipients": len(recipients),
            "message_id": message.extra_headers["Message-ID"],
            "backend": f"{type(connection).__module__}.{type(connection).__name__}",
        }

    def _message(self, ctx: JobContext) -> EmailMultiAlternatives:
        payload = ctx.payload

        def listed(field: str) -> list[str]:
            return _addresses(payload.get(field, []), required=False)[0]

        message = EmailMultiAlternatives(
            subject=payload["subject"],
            body=payload.get("body", ""),
            from_email=payload.get("from_email") or settings.DEFAULT_FROM_EMAIL,
            to=listed("to"),
            cc=listed("cc"),
            bcc=listed("bcc"),
            headers={"Message-ID": f"<job-{ctx.job.id}@{DNS_NAME}>"},
        )
        if payload.get("html_body"):
            message.attach_alternative(payload["html_body"], "text/html")
        return message


def _classify(exc: smtplib.SMTPException) -> HandlerError:
    """Map an SMTP failure to a HandlerError: permanent when retrying the same message cannot
    succeed (refused addresses, bad credentials, any 5xx reply), retryable otherwise."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        refused = ", ".join(sorted(exc.recipients))[:500]
        return HandlerError(f"the mail server refused the recipients: {refused}", permanent=True)
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return HandlerError(f"the mail server rejected the login: {exc}", permanent=True)
    if isinstance(exc, smtplib.SMTPSenderRefused):
        return HandlerError(f"the mail server refused the sender: {exc}", permanent=True)
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return HandlerError(f"the mail server lacks a required feature: {exc}", permanent=True)
    if isinstance(exc, smtplib.SMTPResponseException) and 500 <= exc.smtp_code < 600:
        return HandlerError(f"the mail server rejected the message: {exc}", permanent=True)
    return HandlerError(f"sending failed, will retry: {type(exc).__name__}: {exc}")
