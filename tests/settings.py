"""The test suite's settings: ``draconic/settings.py`` with test defaults for some variables.

Each default is put in the environment before ``draconic.settings`` reads it, so a variable
you set still wins and derived values follow (the channel layer, the cache and the broker
all use ``REDIS_URL``). The defaults are taken out of the environment again afterwards: a
process a test starts gets them only by choosing this module (``tests.conftest.process_env``
does), while one started on ``draconic.settings`` (``check --deploy``, the start-up tests,
``make run``, the chaos run) sees the production defaults, as it would outside the tests.
"""

from __future__ import annotations

import os
from pathlib import Path

_VAR = Path(__file__).resolve().parent.parent / "var"

#: Variable -> its value in the test suite unless the environment sets it.
TEST_DEFAULTS = {
    # Never the development database 0: `get_redis().flushdb()` runs before every test.
    "REDIS_URL": "redis://127.0.0.1:6379/15",
    # Tests submit noop and fail jobs whatever DEBUG says.
    "DRACONIC_DIAGNOSTIC_TYPES": "true",
    "DRACONIC_EXPORT_DIR": str(_VAR / "test-exports"),
    "EMAIL_FILE_PATH": str(_VAR / "test-mail"),
    # Retries, and cancellations of jobs that ignore the request, settle in seconds.
    "DRACONIC_RETRY_BASE_SECONDS": "0.2",
    "DRACONIC_RETRY_MAX_SECONDS": "2.0",
    "DRACONIC_CANCEL_GRACE_SECONDS": "2.0",
    # Tokens are looked up on every request: no test sees a token another test cached.
    "DRACONIC_TOKEN_CACHE_SECONDS": "0",
}

_added = [name for name in TEST_DEFAULTS if name not in os.environ]
for _name, _value in TEST_DEFAULTS.items():
    os.environ.setdefault(_name, _value)
try:
    from draconic.settings import *  # noqa: F403
finally:
    for _name in _added:
        del os.environ[_name]
