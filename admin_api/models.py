"""What operators did: one row per console or staff-API action (who, what, how many, when).

Every action that changes jobs writes its ``OperatorAction`` and, for each job it touched, a
line in that job's ExecutionLog, in the transaction that made the change (``admin_api.audit``).
The ``view_everything`` permission makes an on-call viewer (``admin_api.access``)."""

from __future__ import annotations

from typing import ClassVar

from django.conf import settings
from django.db import models


class OperatorAction(models.Model):
    id = models.BigAutoField(primary_key=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    #: The actor's username when it acted: the row still says who after the user is deleted.
    actor_name = models.CharField(max_length=150)
    #: A verb such as ``cancel``, ``retry``, ``redrive``, ``discard``, ``pause_type``, ``quiet``.
    action = models.CharField(max_length=40)
    #: What it acted on, in words: ``job 4f...``, ``12 jobs matching status=failed type=x``,
    #: ``type send_email``, ``worker celery@host``.
    target = models.CharField(max_length=300)
    #: How many jobs (or other things) the action touched.
    count = models.PositiveIntegerField(default=0)
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering: ClassVar = ["-id"]
        indexes: ClassVar = [
            # The console's audit view, newest first, filtered by actor or by action.
            models.Index(fields=["actor_name", "-id"], name="operator_action_actor_idx"),
            models.Index(fields=["action", "-id"], name="operator_action_action_idx"),
        ]
        permissions: ClassVar = [
            ("view_everything", "Can see every job and page of the console, and change nothing"),
        ]

    def __str__(self) -> str:
        return f"{self.actor_name} {self.action} {self.target} ({self.count})"
