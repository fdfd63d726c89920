"""The worker process's app, built from the environment: `celery -A dreams_sms.worker`."""

from dreams_sms.worker.tasks import app

__all__ = ["app"]
