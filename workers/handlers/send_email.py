"""The ``send_email``  job type. (Handler body arrives with the scheduling engine.)"""

from __future__ import annotations

from typing import Any

from workers.handlers import register
from workers.handlers.base import Handler, HandlerError, JobContext


@register("send_email")
class Handler_send_email(Handler):
    def run(self, ctx: JobContext) -> Any:
        raise HandlerError("not implemented yet", permanent=True)
