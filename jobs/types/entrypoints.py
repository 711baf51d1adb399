"""Job types from installed packages: the entry points of the group ``draconic.job_types``.

A package adds its types without editing settings by declaring, in its ``pyproject.toml``::

    [project.entry-points."draconic.job_types"]
    acme = "acme_jobs.types"                 # a module: its @job_type functions, @register classes
    resize = "acme_jobs.images:resize"       # or one JobType (or Handler class)

Every process loads them at start-up, after ``DRACONIC_HANDLER_MODULES`` (``workers.apps``).
One that cannot be loaded stops the process with ``ImproperlyConfigured`` naming the entry
point and the distribution that declared it, for the reason ``registry.load_modules`` gives:
a process that silently lacked a type would accept its jobs in one place and fail them in
another.
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points

from django.core.exceptions import ImproperlyConfigured

from jobs.types.registry import register_object

GROUP = "draconic.job_types"

#: The entry points this process loaded, as ``"<distribution>: <name> = <value>"``.
_loaded: list[str] = []


def load_entry_points() -> list[str]:
    """Load and register every entry point of ``GROUP``; the type names they added."""
    names: list[str] = []
    for point in sorted(entry_points(group=GROUP), key=lambda p: (_distribution(p), p.name)):
        label = f"{_distribution(point)}: {point.name} = {point.value}"
        if label in _loaded:
            continue
        try:
            names.extend(register_object(point.load(), name=point.name))
        except Exception as exc:
            raise ImproperlyConfigured(_load_error(point, exc)) from exc
        _loaded.append(label)
    return names


def loaded_entry_points() -> list[str]:
    return list(_loaded)


def _distribution(point: EntryPoint) -> str:
    dist = point.dist
    return f"{dist.name} {dist.version}" if dist is not None else "(unknown distribution)"


def _load_error(point: EntryPoint, exc: Exception) -> str:
    return (
        f"the distribution {_distribution(point)} declares the job-type entry point "
        f"{point.name!r} = {point.value!r} (group {GROUP}), which cannot be loaded: "
        f"{type(exc).__name__}: {exc}\n"
        "  Fix or upgrade that package, or uninstall it from this environment."
    )
