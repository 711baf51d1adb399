"""``python -m bench``: Draconic's benchmarks, each side by side with a baseline measured in
the same run (a bare DRF insert view behind the same gunicorn, raw Celery on the same broker).

See ``docs/performance.md`` for what each figure means and the last full run's table.
"""

from __future__ import annotations
