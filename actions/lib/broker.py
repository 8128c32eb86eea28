"""One cloud's notification feed from RabbitMQ (pika), kept alive without ever raising: an
exclusive auto-delete queue bound with ``notifications.#`` to the cloud's topic exchanges,
messages acked only after they were handled, a malformed one dropped, the broker's absence met
with reconnects on an exponential backoff while the caller polls instead."""
import logging
import ssl
import time
from dataclasses import dataclass, field
from typing import Any, Callable, List, Optional, Tuple

from .config_values import default, flag, integer, names

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class BrokerSettings:
    host: str
    port: int
    vhost: str
    username: str
    password: str = field(repr=False)
    use_ssl: bool
    ssl_ca: Optional[str]
    exchanges: Tuple[str, ...]
    topic: str

    @classmethod
    def from_config(cls, section: Any) -> "BrokerSettings":
        def text(key: str) -> str:
            return str(section.get(key) or default("notifications." + key))

        return cls(host=str(section["host"]),
                   port=integer(section.get("port"), "notifications.port",
                                default("notifications.port"), 1, 65535),
                   vhost=text("vhost"), username=text("username"), password=text("password"),
                   use_ssl=flag(section.get("ssl"), "notifications.ssl",
                                default("notifications.ssl")),
                   ssl_ca=section.get("ssl_ca"),
                   exchanges=tuple(names(section.get("exchanges"), "notifications.exchanges")
                                   or default("notifications.exchanges")),
                   topic=text("topic"))

    def parameters(self) -> Any:
        import pika

        options = None
        if self.use_ssl:
            context = ssl.create_default_context(cafile=self.ssl_ca)
            options = pika.SSLOptions(context, self.host)
        return pika.ConnectionParameters(
            host=self.host, port=self.port, virtual_host=self.vhost,
            credentials=pika.PlainCredentials(self.username, self.password),
            ssl_options=options, heartbeat=30, blocked_connection_timeout=30,
            connection_attempts=1, socket_timeout=5)


class Listener:
    """Call ``step()`` in a loop: it connects when due, handles what arrived for up to
    ``seconds`` and returns. ``up`` says whether the feed is live (else poll)."""

    def __init__(self, name: str, settings: BrokerSettings,
                 handle: Callable[[bytes], None], max_backoff: float = 30.0,
                 log: Optional[logging.Logger] = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.settings = settings
        self.handle = handle
        self.max_backoff = max_backoff
        self.log = log or LOG
        self.clock = clock
        self.connection: Any = None
        self.channel: Any = None
        self.failures = 0
        self.next_attempt = 0.0
        self.reconnects = 0
        self.dropped: List[str] = []

    @property
    def up(self) -> bool:
        return self.connection is not None and self.connection.is_open

    def step(self, seconds: float = 0.5) -> None:
        if not self.up:
            if self.clock() < self.next_attempt:
                time.sleep(min(seconds, max(0.0, self.next_attempt - self.clock())))
                return
            self._connect()
            if not self.up:
                return
        try:
            self.connection.process_data_events(time_limit=seconds)
        except Exception as exc:   # any broker trouble: never let it out of the sensor
            self._lost(exc)

    def _connect(self) -> None:
        import pika
        from pika.adapters import select_connection

        # StackStorm's sensor wrapper monkey-patches with eventlet and then puts the blocking
        # select.poll back; pika would pick it, block the whole process in every wait and starve
        # the other cloud's listener (and st2's own green threads). select.select is green there
        # and plain elsewhere: one socket per connection, its limits do not matter.
        select_connection.SELECT_TYPE = "select"
        try:
            connection = pika.BlockingConnection(self.settings.parameters())
            channel = connection.channel()
            queue = channel.queue_declare(queue="", exclusive=True, auto_delete=True).method.queue
            for exchange in self.settings.exchanges:
                channel.exchange_declare(exchange=exchange, exchange_type="topic",
                                         durable=False, passive=False)
                channel.queue_bind(queue=queue, exchange=exchange,
                                   routing_key=self.settings.topic + ".#")
            channel.basic_qos(prefetch_count=50)
            channel.basic_consume(queue=queue, on_message_callback=self._on_message)
        except Exception as exc:
            self._lost(exc)
            return
        if self.failures:
            self.reconnects += 1
            self.log.info("%s: notifications flow again (after %d failed attempts)", self.name,
                          self.failures)
        self.connection, self.channel, self.failures = connection, channel, 0

    def _on_message(self, channel: Any, method: Any, properties: Any, body: bytes) -> None:
        try:
            self.handle(body)
        except ValueError as exc:       # malformed: logged and dropped, never redelivered
            self.dropped.append(str(exc))
            self.log.warning("%s: dropped a malformed message: %s", self.name, exc)
        except Exception:
            self.log.exception("%s: handling a message failed; it is requeued", self.name)
            channel.basic_nack(delivery_tag=method.delivery_tag, requeue=True)
            return
        channel.basic_ack(delivery_tag=method.delivery_tag)

    def _lost(self, exc: Exception) -> None:
        self.failures += 1
        delay = min(self.max_backoff, 0.5 * 2 ** min(self.failures, 10))
        self.next_attempt = self.clock() + delay
        if self.failures == 1 or self.failures % 10 == 0:
            self.log.warning("%s: broker %s:%s unreachable (%s: %s); polling the APIs, next "
                             "attempt in %.1fs", self.name, self.settings.host,
                             self.settings.port, type(exc).__name__, exc, delay)
        self.close()

    def close(self) -> None:
        connection, self.connection, self.channel = self.connection, None, None
        if connection is not None:
            try:
                if connection.is_open:
                    connection.close()
            except Exception:
                pass
