"""The one capacity rule: a job may never need more than the whole cluster has.

Submission refuses such a job (400 naming the field); admission dead-letters one that no longer
fits because the capacity shrank after it was submitted.
"""

from __future__ import annotations

from django.conf import settings


def capacity_errors(*, cpu_units: int, memory_mb: int) -> dict[str, str]:
    """What a job needing ``cpu_units`` and ``memory_mb`` exceeds, by request field; empty
    when it fits the cluster."""
    errors = {}
    if cpu_units > settings.MAX_CPU_UNITS:
        errors["resource_requirements.cpu_units"] = (
            f"{cpu_units} exceeds the cluster's capacity of {settings.MAX_CPU_UNITS} CPU units"
        )
    if memory_mb > settings.MAX_MEMORY_MB:
        errors["resource_requirements.memory_mb"] = (
            f"{memory_mb} exceeds the cluster's capacity of {settings.MAX_MEMORY_MB} MB"
        )
    return errors


def fits_cluster(*, cpu_units: int, memory_mb: int) -> bool:
    return not capacity_errors(cpu_units=cpu_units, memory_mb=memory_mb)
