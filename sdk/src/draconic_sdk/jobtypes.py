"""Job types from functions: ``@job_type`` turns a function into a Draconic job type.

    from draconic_sdk import job_type, RetryPolicy

    @job_type("resize_image", cpu_units=2, memory_mb=512, max_attempts=5,
              retry=RetryPolicy(base_seconds=2, cap_seconds=60, retry_on=(TimeoutError,)))
    def resize_image(ctx, url: str, width: int, keep_ratio: bool = True) -> dict:
        ...

The payload's JSON Schema comes from the signature (``schema_from_signature``) unless the type
declares one (``schema=``); ``JobType.validate`` checks a payload against it and names each bad
field as ``payload.<field>``, the way the REST API answers. A first parameter named ``ctx``
receives the running job's context (logging, progress, cancellation); the others are the
payload's fields. The decorated object still calls the function directly.

This module is pure: it needs neither the server nor Django. The server registers such types
from its modules and entry points, and an external worker pool registers them over the API.
"""

from __future__ import annotations

import dataclasses
import inspect
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

#: The priorities a type may default to, as the REST API names them.
PRIORITIES = ("critical", "high", "normal", "low")
#: The name of the parameter that receives the job's context instead of a payload field.
CONTEXT_PARAMETER = "ctx"


@dataclass(frozen=True)
class RetryPolicy:
    """When a failed attempt runs again: ``base_seconds * 2**(attempt-1)``, capped at
    ``cap_seconds``, spread by ``jitter`` (a fraction, 0..1). An exception in ``give_up_on``
    (or not in ``retry_on``, when that is given) fails the job at once, without retries."""

    base_seconds: float = 1.0
    cap_seconds: float = 300.0
    jitter: float = 0.2
    retry_on: tuple[type[BaseException], ...] = ()
    give_up_on: tuple[type[BaseException], ...] = ()

    def __post_init__(self) -> None:
        if not 0 < self.base_seconds <= self.cap_seconds:
            raise ValueError("RetryPolicy needs 0 < base_seconds <= cap_seconds")
        if not 0 <= self.jitter <= 1:
            raise ValueError("RetryPolicy.jitter is a fraction between 0 and 1")

    def retries(self, exc: BaseException) -> bool:
        """Whether an attempt that raised ``exc`` may be retried."""
        if isinstance(exc, self.give_up_on):
            return False
        return not self.retry_on or isinstance(exc, self.retry_on)

    def describe(self) -> dict[str, Any]:
        return {
            "base_seconds": self.base_seconds,
            "cap_seconds": self.cap_seconds,
            "jitter": self.jitter,
            "retry_on": [_dotted(cls) for cls in self.retry_on],
            "give_up_on": [_dotted(cls) for cls in self.give_up_on],
        }


@dataclass(frozen=True)
class Defaults:
    """What a job of the type gets when its body does not say: ``None`` means the server's."""

    priority: str | None = None
    cpu_units: int | None = None
    memory_mb: int | None = None
    max_attempts: int | None = None
    timeout_seconds: int | None = None

    def __post_init__(self) -> None:
        if self.priority is not None and self.priority not in PRIORITIES:
            raise ValueError(f"priority must be one of {', '.join(PRIORITIES)}")
        for name in ("cpu_units", "memory_mb", "max_attempts", "timeout_seconds"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be a positive integer")

    def describe(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


@dataclass(frozen=True)
class JobType:
    """A job type: its name, the function that runs it, its defaults, retry policy and the
    JSON Schema of its payload. Calling it calls the function."""

    name: str
    fn: Callable[..., Any]
    defaults: Defaults = field(default_factory=Defaults)
    retry: RetryPolicy | None = None
    schema: dict[str, Any] = field(default_factory=dict)
    takes_context: bool = False
    description: str = ""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    def run(self, ctx: Any, payload: Mapping[str, Any]) -> Any:
        """Run the function on a payload that ``validate`` accepted."""
        if self.takes_context:
            return self.fn(ctx, **payload)
        return self.fn(**payload)

    def validate(self, payload: Any) -> dict[str, str]:
        """Errors by field (``payload.<field>``), empty when the payload fits the schema."""
        return validate_payload(self.schema, payload)

    def describe(self) -> dict[str, Any]:
        """The type as the server lists it and an external pool registers it."""
        return {
            "name": self.name,
            "description": self.description,
            "payload_schema": self.schema,
            "defaults": self.defaults.describe(),
            "retry": self.retry.describe() if self.retry else None,
        }


def job_type(
    name: str | None = None,
    *,
    priority: str | None = None,
    cpu_units: int | None = None,
    memory_mb: int | None = None,
    max_attempts: int | None = None,
    timeout_seconds: int | None = None,
    retry: RetryPolicy | None = None,
    schema: Mapping[str, Any] | None = None,
) -> Callable[[Callable[..., Any]], JobType]:
    """Make a function a job type named ``name`` (default: its dotted path)."""

    def decorate(fn: Callable[..., Any]) -> JobType:
        takes_context = _takes_context(fn)
        return JobType(
            name=name or f"{fn.__module__}.{fn.__qualname__}",
            fn=fn,
            defaults=Defaults(priority, cpu_units, memory_mb, max_attempts, timeout_seconds),
            retry=retry,
            schema=dict(schema) if schema is not None else schema_from_signature(fn),
            takes_context=takes_context,
            description=inspect.getdoc(fn) or "",
        )

    return decorate


def job_types_in(module: types.ModuleType) -> list[JobType]:
    """The job types a module defines at its top level, in definition order."""
    return [value for value in vars(module).values() if isinstance(value, JobType)]


# --- the payload schema -------------------------------------------------------------------


def _takes_context(fn: Callable[..., Any]) -> bool:
    params = list(inspect.signature(fn).parameters.values())
    return bool(params) and params[0].name == CONTEXT_PARAMETER


def schema_from_signature(fn: Callable[..., Any]) -> dict[str, Any]:
    """The JSON Schema of a payload that calls ``fn``: one property per parameter (after
    ``ctx``), required unless it has a default; unknown fields refused unless ``fn`` takes
    ``**kwargs``. Annotations map to JSON types; an unannotated parameter takes any value."""
    hints = typing.get_type_hints(fn)
    properties: dict[str, Any] = {}
    required: list[str] = []
    extra = False
    for index, param in enumerate(inspect.signature(fn).parameters.values()):
        if index == 0 and param.name == CONTEXT_PARAMETER:
            continue
        if param.kind is param.VAR_KEYWORD:
            extra = True
            continue
        if param.kind in (param.VAR_POSITIONAL, param.POSITIONAL_ONLY):
            raise TypeError(
                f"{fn.__qualname__}: *args and positional-only parameters cannot "
                "come from a payload; use named parameters"
            )
        properties[param.name] = json_schema_of(hints.get(param.name, Any))
        if param.default is param.empty:
            required.append(param.name)
        elif _json_default(param.default):
            properties[param.name]["default"] = param.default
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    schema["additionalProperties"] = extra
    return schema


_SIMPLE: dict[Any, dict[str, Any]] = {
    str: {"type": "string"},
    int: {"type": "integer"},
    float: {"type": "number"},
    bool: {"type": "boolean"},
    type(None): {"type": "null"},
    list: {"type": "array"},
    tuple: {"type": "array"},
    dict: {"type": "object"},
}


def json_schema_of(annotation: Any) -> dict[str, Any]:
    """The JSON Schema of one annotation (str, int, float, bool, None, list[X], dict[str, X],
    X | None, Literal[...], Any); anything else is refused with a TypeError."""
    if annotation is Any or annotation is inspect.Parameter.empty:
        return {}
    if annotation in _SIMPLE:
        return dict(_SIMPLE[annotation])
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return {"enum": list(args)}
    if origin in (typing.Union, types.UnionType):
        return {"anyOf": [json_schema_of(arg) for arg in args]}
    if origin in (list, tuple, set, frozenset) and args:
        return {"type": "array", "items": json_schema_of(args[0])}
    if origin is dict and args:
        return {"type": "object", "additionalProperties": json_schema_of(args[1])}
    if origin is not None and origin in _SIMPLE:
        return dict(_SIMPLE[origin])
    raise TypeError(
        f"cannot make a JSON Schema of {annotation!r}: annotate payload fields with str, int, "
        "float, bool, list[...], dict[str, ...], Literal[...] or X | None, or pass schema="
    )


def _json_default(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


# --- validation ----------------------------------------------------------------------------


def validate_payload(schema: Mapping[str, Any], payload: Any) -> dict[str, str]:
    """Check ``payload`` against ``schema``; errors keyed ``payload`` or ``payload.<field>``."""
    import jsonschema  # type: ignore[import-untyped]  # only where payloads are checked

    if not isinstance(payload, dict):
        return {"payload": "Must be a JSON object."}
    validator = jsonschema.Draft202012Validator(schema)
    errors: dict[str, str] = {}
    for error in sorted(validator.iter_errors(payload), key=lambda e: list(e.absolute_path)):
        for key, message in _describe(error):
            errors.setdefault(key, message)
    return errors


def _describe(error: Any) -> list[tuple[str, str]]:
    path = ".".join(str(part) for part in error.absolute_path)
    where = f"payload.{path}" if path else "payload"
    if error.validator == "required":
        missing = [name for name in error.validator_value if name not in error.instance]
        return [(f"{where}.{name}", "This field is required.") for name in missing]
    if error.validator == "additionalProperties" and error.validator_value is False:
        known = set(error.schema.get("properties", {}))
        unknown = sorted(name for name in error.instance if name not in known)
        return [(f"{where}.{name}", "Unknown field.") for name in unknown]
    if error.validator == "type":
        return [(where, f"Must be of type {_type_words(error.validator_value)}.")]
    return [(where, error.message)]


def _type_words(value: Any) -> str:
    names = value if isinstance(value, list) else [value]
    return " or ".join(str(name) for name in names)


def _dotted(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"
