"""The Celery application shared by the backend (which only publishes) and the worker.

Delivery guarantees, and why each setting is here:
- ``task_acks_late``: a message is acknowledged after the task returns, not when it is received,
  so a worker killed mid-task leaves it unacknowledged and RabbitMQ redelivers it;
- ``task_reject_on_worker_lost``: if a pool process dies (OOM kill, SIGKILL) the message is
  requeued instead of being acknowledged as failed;
- ``worker_prefetch_multiplier=1``: a worker holds one unacknowledged message per pool process,
  so the others stay available to other workers and a crash strands nothing else;
- durable exchange and queue, persistent messages, publisher confirms: an accepted upload's task
  survives a broker restart, and ``send_task`` returns only after the broker has it;
- ``worker_cancel_long_running_tasks_on_connection_loss``: when the broker connection drops, the
  broker redelivers the unacknowledged messages to someone else; carrying on would run them twice
  in parallel (harmless, tasks are idempotent, but wasteful).
"""

from __future__ import annotations

from celery import Celery
from kombu import Exchange, Queue

from .config import Settings

TASK_RESIZE = "imagehost.resize"


def make_celery(settings: Settings) -> Celery:
    app = Celery("imagehost", broker=settings.broker_url, set_as_current=False)
    exchange = Exchange(settings.queue, type="direct", durable=True)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_queues=[Queue(settings.queue, exchange, routing_key=settings.queue, durable=True)],
        task_default_queue=settings.queue,
        task_default_exchange=settings.queue,
        task_default_routing_key=settings.queue,
        task_default_delivery_mode="persistent",
        task_routes={TASK_RESIZE: {"queue": settings.queue, "routing_key": settings.queue}},
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        result_backend=None,
        broker_transport_options={"confirm_publish": True},
        broker_connection_timeout=4,
        broker_connection_retry_on_startup=True,
        broker_heartbeat=30,
        worker_cancel_long_running_tasks_on_connection_loss=True,
        worker_concurrency=settings.worker_concurrency,
        worker_send_task_events=False,
        task_send_sent_event=False,
    )
    return app


def enqueue_resize(app: Celery, settings: Settings, image_id: str) -> None:
    """Publish one resize task and return once the broker confirmed it; raise if it cannot."""
    app.send_task(
        TASK_RESIZE,
        args=[image_id],
        kwargs={"sizes": list(settings.sizes)},
        queue=settings.queue,
        routing_key=settings.queue,
        retry=True,
        retry_policy={"max_retries": 2, "interval_start": 0, "interval_step": 0.5, "interval_max": 1},
        timeout=5,
        confirm_timeout=5,
    )
