"""A guard in kombu's Redis transport: a channel whose broker connection was torn down raises
a connection error, never ``AttributeError: 'NoneType' object has no attribute 'hostname'``.

Why (kombu 5.7.0 with Celery 5.7.0; reproduced by ``tests/e2e/test_broker_reconnect.py``):
when a worker loses Redis, ``Consumer.on_connection_error_after_connected`` (celery/worker/
consumer/consumer.py) first ``collect()``s the broken connection and then, new in Celery 5.7,
``close()``s it. ``collect()`` closes the channels while Redis is down, and two of those
closes stop half-way with a connection error:

- the task channel's, at once, if a BRPOP was outstanding (``Channel.close`` reads its reply
  first): the worker had a free slot, and noticed the loss on another socket first, such as
  the broadcast (pub/sub) connection of the remote control channel;
- the remote control channel's, deleting its auto-delete binding, which aborts
  ``Transport.close_connection`` before it reaches the task channel.

``collect()`` then sets the transport's ``client`` to ``None`` but leaves the task channel
attached to it, as the connection's default channel. ``close()`` closes that channel again;
with an attempt still running (``acks_late``), it restores the unacknowledged message, which
builds a new connection pool from ``self.connection.client.hostname``
(kombu/transport/redis.py, ``Channel._connparams``): the ``AttributeError`` escapes
``maybe_close_channel`` and ``ignore_errors``, which expect connection errors, and the worker
exits ("Unrecoverable error"). A late ack of such a message on the old channel takes the same
path.

No release avoids it while keeping kombu's publish batch (``jobs.engine.publish``): kombu 5.7.0
and Celery 5.7.0 are the newest, and no setting keeps the channel attached or skips the
restore. The guard makes the use of a torn-down channel what kombu's callers already handle:
the close goes on, the late ack is logged as not done (Redis lost the message anyway, and the
attempt's outcome is recorded in PostgreSQL). Remove it when kombu no longer needs it; the test
shows whether it does.
"""

from __future__ import annotations

from typing import Any

from kombu.transport import redis as kombu_redis
from redis.exceptions import ConnectionError as RedisConnectionError

_GUARDED = "_draconic_guarded"


def install_closed_transport_guard() -> None:
    """Wrap ``Channel._connparams`` of kombu's Redis transport once (idempotent)."""
    channel_class: Any = kombu_redis.Channel  # kombu's stubs do not declare its private methods
    original = channel_class._connparams
    if getattr(original, _GUARDED, False):
        return

    def _connparams(self: Any, asynchronous: bool = False) -> Any:
        transport = self.connection
        if transport is None or transport.client is None:
            raise RedisConnectionError(
                "the broker connection of this channel was closed (Redis was lost)"
            )
        return original(self, asynchronous=asynchronous)

    setattr(_connparams, _GUARDED, True)
    channel_class._connparams = _connparams
