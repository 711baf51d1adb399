"""Submitting jobs from code inside the deployment, validated exactly as the REST API does.

    from jobs.services import job_submit
    job = job_submit(owner=user, body={"type": "send_email", "payload": {...}})

``body`` is what ``POST /jobs/`` takes, checked by the same serializer: an unknown type, a
payload that does not fit the type's schema, a bad field raise
``rest_framework.exceptions.ValidationError`` whose ``detail`` is the REST API's 400 body;
an unknown parent or a reused idempotency key raise the ``jobs.errors`` errors the API turns
into its 400/409. ``jobs.api.submit`` stores specs that were validated already; it is the
internal half, not for callers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.contrib.auth.models import User

from jobs.api import submit
from jobs.api.serializers import BatchInputSerializer, JobInputSerializer
from jobs.models import Job


def job_submit(*, owner: User, body: Mapping[str, Any]) -> Job:
    """Validate ``body`` as ``POST /jobs/`` does and store the job; a repeated
    ``idempotency_key`` with the same body returns the first job."""
    serializer = JobInputSerializer(data=body)
    serializer.is_valid(raise_exception=True)
    job, _ = submit.job_submit(owner=owner, spec=serializer.to_spec())
    return job


def job_submit_batch(*, owner: User, jobs: Sequence[Mapping[str, Any]]) -> list[Job]:
    """Validate ``jobs`` as ``POST /jobs/batch/`` does (``{"jobs": jobs}``) and store them in
    one transaction; the jobs in the given order."""
    serializer = BatchInputSerializer(data={"jobs": list(jobs)})
    serializer.is_valid(raise_exception=True)
    return submit.job_submit_batch(owner=owner, specs=serializer.to_specs())
