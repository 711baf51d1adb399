"""``python -m tests.cluster [--quick] ...``: the platform on test hosts (``make cluster``)."""

from __future__ import annotations

import sys

from tests.cluster.run import main

sys.exit(main())
