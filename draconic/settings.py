"""Django settings for Draconic, read from the environment (12-factor).

What each variable means, and its default, is written once, in ``.env.example``, in
sections of the same names as the ones below; the comments here say only why a fixed value
is what it is. A value that cannot be used raises ``ImproperlyConfigured`` naming the
variable, at start-up. These are the development (``DEBUG=true``) and production defaults;
the test suite's own defaults are in ``tests/settings.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from redis.connection import parse_url

from draconic.env import (
    SHUTDOWN_GRACE_SECONDS,
    env_bool,
    env_choice,
    env_float,
    env_int,
    env_json,
    env_list,
    env_rate,
    env_str,
    env_url,
)

BASE_DIR = Path(__file__).resolve().parent.parent

# --- Core -------------------------------------------------------------------------------
DEBUG = env_bool("DEBUG", True)
SECRET_KEY = env_str("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is false")
    SECRET_KEY = "draconic-development-only-insecure-key"  # noqa: S105
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    # Swagger UI and ReDoc served from our own static files: the docs work offline.
    "drf_spectacular_sidecar",
    "channels",
    "jobs",
    "admin_api",
    "workers",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Static files (the admin's, the browsable API's, the API docs') in every process, with
    # SecurityMiddleware's headers; a GET of a file has no body for the size limit to read.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Every request body is capped (413) before anything reads it: see "Security" below.
    "draconic.middleware.RequestSizeLimitMiddleware",
    # A worker token (external pools) is good for the worker API only: 403 anywhere else.
    "jobs.pools.auth.WorkerTokenScopeMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # A Redis outage under a plain view (admin, dashboard) is a 503, not a 500.
    "draconic.middleware.RedisUnavailableMiddleware",
]

ROOT_URLCONF = "draconic.urls"
WSGI_APPLICATION = "draconic.wsgi.application"
ASGI_APPLICATION = "draconic.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- PostgreSQL: jobs, edges, logs, dead letters ------------------------------------------
DATABASE_URL = env_url(
    "DATABASE_URL",
    "postgres://postgres@127.0.0.1:5432/draconic",
    schemes=("postgres", "postgresql"),
)
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL,
        conn_max_age=env_int("DB_CONN_MAX_AGE", 60, minimum=0),
        conn_health_checks=True,
    )
}
WORKER_DB_CONN_MAX_AGE = env_int("WORKER_DB_CONN_MAX_AGE", 300, minimum=0)
DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = env_int(
    "DB_CONNECT_TIMEOUT", 5, minimum=1
)
# Behind PgBouncer in transaction mode nothing may outlive a transaction: no server-side
# cursors (QuerySet.iterator() would keep a WITH HOLD cursor in the session), and the engine's
# statements go as plain queries instead of prepared ones (jobs/engine/prepared.py). "auto"
# tells a pooler by the server's port differing from the one dialled; docs/scaling.md.
DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True
DRACONIC_DB_POOLED = env_choice("DRACONIC_DB_POOLED", "AUTO", ("AUTO", "TRUE", "FALSE"))
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: Celery broker, resource ledger, channel layer, cache --------------------------
REDIS_URL = env_url("REDIS_URL", "redis://127.0.0.1:6379/0", schemes=("redis", "rediss", "unix"))
DRACONIC_REDIS_PREFIX = env_str("DRACONIC_REDIS_PREFIX", "draconic")

# The pub/sub layer: a group message is one PUBLISH, which costs nothing when nobody listens,
# and job events are published from the same Redis pipeline as the ledger's commands
# (jobs.live.events.publish_in), so the layer must live on REDIS_URL. Pub/sub channels are not
# scoped by Redis database, so the prefix names the database.
CHANNEL_LAYERS: dict[str, dict[str, Any]] = {
    "default": {
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {
            "hosts": [REDIS_URL],
            "prefix": f"{DRACONIC_REDIS_PREFIX}:{parse_url(REDIS_URL).get('db', 0)}:asgi",
        },
    }
}
# The cache shares REDIS_URL's database with the ledger and the broker: cache.clear() would
# FLUSHDB all of it, so nothing may call it outside tests.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": f"{DRACONIC_REDIS_PREFIX}:cache",
    }
}

# --- Celery -------------------------------------------------------------------------------
# Redis only: the health check and the queue-depth metrics read the broker with redis-py.
CELERY_BROKER_URL = env_url("CELERY_BROKER_URL", REDIS_URL, schemes=("redis", "rediss"))
CELERY_RESULT_BACKEND = None  # results live in PostgreSQL, on the Job row
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "normal"
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, Any] = {
    "queue_order_strategy": "priority",
    # Longer than any job may run, so acks_late never causes a redelivery of a live task.
    "visibility_timeout": 86400 + 3600,
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_SEND_TASK_EVENTS = env_bool("CELERY_WORKER_SEND_TASK_EVENTS", True)
CELERY_TASK_SEND_SENT_EVENT = env_bool("CELERY_TASK_SEND_SENT_EVENT", False)
CELERY_WORKER_HIJACK_ROOT_LOGGER = False  # draconic.logging owns the workers' log lines

# --- The engine: capacity, job defaults, retries, leases, the scheduler --------------------
MAX_CPU_UNITS = env_int("MAX_CPU_UNITS", 8, minimum=1)
MAX_MEMORY_MB = env_int("MAX_MEMORY_MB", 4096, minimum=1)
# A worker's slots (prefork pool processes) default to the capacity: every job takes at least
# one CPU unit, so one worker (make run's) can run all that the ledger admits at once. The
# prefork pool stays: it enforces timeout_seconds (Celery's soft and hard time limits) and a
# forced cancel (terminate), which the threads pool cannot, and each job runs in its own
# process (the lease keeper starts on worker_process_init). See README "Sizing".
CELERY_WORKER_CONCURRENCY = env_int("CELERY_WORKER_CONCURRENCY", MAX_CPU_UNITS, minimum=1)
DRACONIC_MAX_PAYLOAD_BYTES = env_int("DRACONIC_MAX_PAYLOAD_BYTES", 64 * 1024, minimum=2)
DRACONIC_MAX_BATCH_SIZE = env_int("DRACONIC_MAX_BATCH_SIZE", 1000, minimum=1)
DRACONIC_DEFAULT_MAX_ATTEMPTS = env_int("DRACONIC_DEFAULT_MAX_ATTEMPTS", 3, minimum=1)
DRACONIC_DEFAULT_TIMEOUT_SECONDS = env_int("DRACONIC_DEFAULT_TIMEOUT_SECONDS", 3600, minimum=1)
DRACONIC_HANDLER_MODULES = env_list("DRACONIC_HANDLER_MODULES", [])
DRACONIC_DIAGNOSTIC_TYPES = env_bool("DRACONIC_DIAGNOSTIC_TYPES", DEBUG)
DRACONIC_EXPORT_DIR = Path(env_str("DRACONIC_EXPORT_DIR", str(BASE_DIR / "var" / "exports")))
DRACONIC_EXPORT_STORAGE = env_str("DRACONIC_EXPORT_STORAGE", "draconic.storage.ExportStorage")
DRACONIC_EXPORT_STORAGE_OPTIONS = env_json("DRACONIC_EXPORT_STORAGE_OPTIONS")
# data_export writes and GET /jobs/{id}/export reads through STORAGES["exports"] only (below).
DRACONIC_RETRY_BASE_SECONDS = env_float("DRACONIC_RETRY_BASE_SECONDS", 2.0, minimum=0)
DRACONIC_RETRY_MAX_SECONDS = env_float("DRACONIC_RETRY_MAX_SECONDS", 300.0, minimum=0)
DRACONIC_RETRY_JITTER = env_float("DRACONIC_RETRY_JITTER", 0.2, minimum=0)
DRACONIC_LEASE_SECONDS = env_float("DRACONIC_LEASE_SECONDS", 30.0, minimum=1)
DRACONIC_TIMEOUT_GRACE_SECONDS = env_int("DRACONIC_TIMEOUT_GRACE_SECONDS", 10, minimum=1)
DRACONIC_REQUEUE_AFTER_SECONDS = env_float("DRACONIC_REQUEUE_AFTER_SECONDS", 300.0, minimum=1)
DRACONIC_AGING_SECONDS = env_float("DRACONIC_AGING_SECONDS", 30.0, minimum=0)
DRACONIC_CANCEL_GRACE_SECONDS = env_float("DRACONIC_CANCEL_GRACE_SECONDS", 10.0, minimum=0)
DRACONIC_CANCEL_POLL_SECONDS = env_float("DRACONIC_CANCEL_POLL_SECONDS", 1.0, minimum=0.05)
# SIGTERM is a warm shutdown: running jobs get this long to finish, then are handed back
# (pending again, not charged an attempt). Keep a supervisor's stop timeout above it.
DRACONIC_SHUTDOWN_GRACE_SECONDS = env_float(
    "DRACONIC_SHUTDOWN_GRACE_SECONDS", SHUTDOWN_GRACE_SECONDS, minimum=0
)
DRACONIC_SCHEDULER_TICK_SECONDS = env_float("DRACONIC_SCHEDULER_TICK_SECONDS", 1.0, minimum=0.05)
# A schedule with catchup "none" still fires a due time at most this old (a late scheduler).
DRACONIC_SCHEDULE_GRACE_SECONDS = env_float("DRACONIC_SCHEDULE_GRACE_SECONDS", 60.0, minimum=0)
DRACONIC_DISPATCH_BATCH = env_int("DRACONIC_DISPATCH_BATCH", 100, minimum=1)
# An external worker pool none of whose workers was heard from (registration, heartbeat,
# lease renewal) for this long is not live: its types' jobs wait (jobs.pools).
DRACONIC_POOL_LIVE_SECONDS = env_float("DRACONIC_POOL_LIVE_SECONDS", 60.0, minimum=1)
# One dispatcher at a time runs admission and the sweeps, under a Redis lease it renews at each
# step: one that stops (frozen, cut off) loses it this long after its last renewal.
DRACONIC_DISPATCH_LEASE_SECONDS = env_float("DRACONIC_DISPATCH_LEASE_SECONDS", 5.0, minimum=0.5)
DRACONIC_DISPATCH_LINGER_SECONDS = env_float("DRACONIC_DISPATCH_LINGER_SECONDS", 0.01, minimum=0)
DRACONIC_DISPATCH_HOLD_SECONDS = env_float("DRACONIC_DISPATCH_HOLD_SECONDS", 0.1, minimum=0)

# --- Email (send_email jobs) --------------------------------------------------------------
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.filebased.EmailBackend"
    if DEBUG
    else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_FILE_PATH = env_str("EMAIL_FILE_PATH", str(BASE_DIR / "var" / "mail"))
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "draconic@localhost")

# --- REST framework: authentication, parsing, rate limits ----------------------------------
DRACONIC_TOKEN_CACHE_SECONDS = env_float("DRACONIC_TOKEN_CACHE_SECONDS", 30, minimum=0)
# Read on every request by draconic.throttling (DRF would bind DEFAULT_THROTTLE_RATES once).
DRACONIC_THROTTLE_USER = env_rate("DRACONIC_THROTTLE_USER", "6000/min")
DRACONIC_THROTTLE_ANON = env_rate("DRACONIC_THROTTLE_ANON", "60/min")
REST_FRAMEWORK: dict[str, Any] = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "draconic.authentication.CachedTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    # An on-call viewer reads everything and writes nothing (admin_api.access).
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
        "admin_api.access.ViewersReadOnly",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"]
    + (["rest_framework.renderers.BrowsableAPIRenderer"] if DEBUG else []),
    # DRF's JSONParser lets through bodies that later fail with a 500 (too deep, 1e400, lone
    # surrogates); this parser answers them with a 400. See jobs/parsers.py.
    "DEFAULT_PARSER_CLASSES": ["jobs.api.parsers.StrictJSONParser"],
    "DEFAULT_THROTTLE_CLASSES": [
        "draconic.throttling.UserThrottle",
        "draconic.throttling.AnonThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "user": DRACONIC_THROTTLE_USER,
        "anon": DRACONIC_THROTTLE_ANON,
    },
    "NUM_PROXIES": env_int("DRACONIC_NUM_PROXIES", 0, minimum=0),
    "EXCEPTION_HANDLER": "jobs.api.errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Draconic API",
    "DESCRIPTION": "Submit typed jobs and dependency graphs; watch them run on Celery.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    # From drf_spectacular_sidecar's static files, not a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Fields named "reason" with other choices (waiting_on's) must not rename this one.
    "ENUM_NAME_OVERRIDES": {"ReasonEnum": "jobs.models.DeadLetterReason"},
    # drf-spectacular's default hook, then one component per job type's payload.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "admin_api.job_types.document_job_types",
    ],
}

# --- Security: request size, headers, cookies, TLS (owned by the security tests) ----------
DRACONIC_MAX_REQUEST_BYTES = env_int("DRACONIC_MAX_REQUEST_BYTES", 2 * 1024 * 1024, minimum=1024)
# Django's own in-memory cap is the middleware's number, so the two can never disagree.
DATA_UPLOAD_MAX_MEMORY_SIZE = DRACONIC_MAX_REQUEST_BYTES
# Headers on every response (SecurityMiddleware, XFrameOptionsMiddleware).
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SESSION_COOKIE_HTTPONLY = True
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31_536_000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
_proxy_ssl_header = env_str("SECURE_PROXY_SSL_HEADER", "")
SECURE_PROXY_SSL_HEADER = (_proxy_ssl_header, "https") if _proxy_ssl_header else None
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
# `check --deploy` warnings that are deployment decisions, not code defects:
# W005/W021: HSTS for subdomains and preload lists bind the whole domain; the operator opts in.
# W008: SECURE_SSL_REDIRECT defaults off because TLS terminates at the proxy, which redirects.
SILENCED_SYSTEM_CHECKS = ["security.W005", "security.W021", "security.W008"]

# --- Static files, auth, i18n -------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "var" / "static"
# The dashboard's own CSS/JS live in static/ at the repository root.
STATICFILES_DIRS = [BASE_DIR / "static"]
# WhiteNoise serves /static/ from every process, daphne under `make run` included (Django's
# own static view serves only runserver). In development it reads the apps' files where they
# are (no collectstatic); in production, STATIC_ROOT as the image's build collected it, with
# hashed names so a file may be cached for ever.
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG
STORAGES: dict[str, dict[str, Any]] = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
    # data_export's files (see the engine section above); served by GET /jobs/{id}/export.
    "exports": {"BACKEND": DRACONIC_EXPORT_STORAGE, "OPTIONS": DRACONIC_EXPORT_STORAGE_OPTIONS},
}
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/dashboard/"
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Observability: health, metrics, dashboard, Flower (admin_api) -------------------------
DRACONIC_WORKER_HEARTBEAT_SECONDS = env_float("DRACONIC_WORKER_HEARTBEAT_SECONDS", 5.0, minimum=0.1)
DRACONIC_WORKER_HEARTBEAT_TTL = env_float("DRACONIC_WORKER_HEARTBEAT_TTL", 15.0, minimum=1)
if DRACONIC_WORKER_HEARTBEAT_TTL <= DRACONIC_WORKER_HEARTBEAT_SECONDS:
    raise ImproperlyConfigured(
        "DRACONIC_WORKER_HEARTBEAT_TTL must be longer than DRACONIC_WORKER_HEARTBEAT_SECONDS"
    )
METRICS_TOKEN = env_str("METRICS_TOKEN", "")
# Flower reads FLOWER_BASIC_AUTH itself; read here only to refuse a malformed value, and an
# unauthenticated Flower in production.
FLOWER_BASIC_AUTH = env_str("FLOWER_BASIC_AUTH", "")
if FLOWER_BASIC_AUTH and not all(
    user and password
    for user, _, password in (pair.partition(":") for pair in FLOWER_BASIC_AUTH.split(","))
):
    raise ImproperlyConfigured("FLOWER_BASIC_AUTH must be user:password[,user:password...]")
if not DEBUG and not FLOWER_BASIC_AUTH and "flower" in sys.argv:
    raise ImproperlyConfigured("FLOWER_BASIC_AUTH must be set to run Flower when DEBUG is false")

# --- Logging: one JSON line per record from every process (see draconic/logging.py) -------
# Celery workers keep this configuration: draconic.celery connects
# draconic.logging.install_celery_logging, so Celery adds no text handlers of its own.
LOG_LEVEL = env_choice("LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"))
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "draconic.logging.JsonFormatter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}
