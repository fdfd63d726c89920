"""The worker wing: the Celery app, its tasks and the drain they run.

`celery -A dreams_sms.worker` finds the app in `dreams_sms.worker.celery`
(Celery looks for a `celery` module in a package), which builds it from the
environment; importing this package, `drain` or `tasks` builds nothing.
"""
