"""The Celery bridge: a team's ``@shared_task`` functions become Draconic job types, with their
bodies and call sites unchanged. ``DraconicTask`` (``task.py``) sends ``.delay()`` and
``.apply_async()`` to Draconic; ``mapping`` turns a task's options into the job type's
defaults and retry policy and refuses what cannot map; ``job_types`` is the source through
which a project's Draconic worker finds the bridged tasks of a module (registered on import).

``check_app(app)`` is the start-up check: every bridged task of the app, and the app's own
serializer, or a ``BridgeError`` listing each problem with what to do. ``rate_limit_rules``
are the limit rules the tasks' ``rate_limit`` options ask for; ``ensure_rate_limits`` creates
or updates them through the staff API, and with a token that is not staff's returns them for
an operator to create (``draconic limits set type:<name> --rate 10/m``).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from draconic_sdk import bridging
from draconic_sdk.celery_bridge.mapping import (
    BridgeError,
    body_of,
    job_type_of,
    mapped,
    problems,
    resolved,
)
from draconic_sdk.celery_bridge.task import DraconicResult, DraconicTask
from draconic_sdk.client import Client
from draconic_sdk.errors import PermissionDenied
from draconic_sdk.jobtypes import JobType

__all__ = [
    "BridgeError",
    "DraconicResult",
    "DraconicTask",
    "RateLimitReport",
    "bridged_tasks",
    "check_app",
    "django_check",
    "ensure_rate_limits",
    "job_type_of",
    "job_types",
    "rate_limit_rules",
]


def job_types(module: ModuleType) -> list[JobType]:
    """The job types of the bridged Celery tasks ``module`` defines (``@shared_task`` objects
    are proxies: each is resolved to its task). Raises ``BridgeError`` for one that cannot be
    bridged, so a worker refuses to start rather than fail its jobs."""
    found = []
    for value in vars(module).values():
        task = _resolved(value)
        if task is None or body_of(task).__module__ != module.__name__:
            continue
        reasons = problems(task, app_serializer=task.app.conf.task_serializer)
        if reasons:
            raise BridgeError("; ".join(reasons))
        found.append(job_type_of(task))
    return found


def _resolved(value: Any) -> DraconicTask | None:
    try:
        task = resolved(value)
    except Exception:  # a proxy that does not resolve is not a task of ours
        return None
    return task if isinstance(task, DraconicTask) and task.name else None


def bridged_tasks(app: Any, modules: Iterable[str] = ()) -> list[DraconicTask]:
    """The app's bridged tasks, once ``modules`` (where its tasks are defined) are imported;
    not Celery's own (``celery.chord`` and the like are DraconicTasks too under ``task_cls``).
    Celery's ``import_default_modules`` is not called: under Django it runs the system
    checks, this one among them."""
    for name in modules:
        importlib.import_module(name)
    return [
        task
        for name, task in sorted(app.tasks.items())
        if isinstance(task, DraconicTask) and not name.startswith("celery.")
    ]


def check_app(app: Any, modules: Iterable[str] = ()) -> list[DraconicTask]:
    """Refuse (``BridgeError``, every problem listed) an app with a bridged task that cannot
    run on Draconic; returns its bridged tasks."""
    tasks = bridged_tasks(app, modules)
    reasons = [r for t in tasks for r in problems(t, app_serializer=app.conf.task_serializer)]
    if reasons:
        raise BridgeError("the Celery bridge cannot run: " + "; ".join(reasons))
    return tasks


def django_check(app: Any, modules: Iterable[str] = ()) -> Any:
    """A Django system check running ``check_app(app, modules)`` (register it in an
    AppConfig's ``ready``: ``checks.register(django_check(celery_app, [...]))``): ``manage.py
    check``, ``migrate``, ``runserver`` and the worker refuse to start while a task cannot be
    bridged."""
    from django.core import checks

    def bridge_check(**kwargs: Any) -> list[checks.CheckMessage]:
        try:
            check_app(app, modules)
        except BridgeError as exc:
            return [checks.Error(str(exc), id="draconic_sdk.E010")]
        return []

    return bridge_check


def rate_limit_rules(tasks: list[DraconicTask]) -> dict[str, str]:
    """``{"type:<name>": rate}`` for each task with a ``rate_limit``."""
    rates = {task.name: mapped(task).rate for task in tasks}
    return {f"type:{name}": rate for name, rate in rates.items() if rate}


@dataclass
class RateLimitReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    #: Rules this token may not create ({key: rate}): an operator must.
    for_operator: dict[str, str] = field(default_factory=dict)


def ensure_rate_limits(client: Client, rules: dict[str, str]) -> RateLimitReport:
    """Make each rule exist with its rate (keeping a rule's ``max_concurrency``)."""
    report = RateLimitReport()
    try:
        existing = {rule.key: rule for rule in client.limits.list()}
    except PermissionDenied:
        report.for_operator = dict(rules)
        return report
    for key, rate in sorted(rules.items()):
        rule = existing.get(key)
        if rule is None:
            client.limits.create(key, rate=rate)
            report.created.append(key)
        elif rule.rate != rate:
            client.limits.update(rule, rate=rate)
            report.updated.append(key)
        else:
            report.unchanged.append(key)
    return report


bridging.register_source(job_types)
