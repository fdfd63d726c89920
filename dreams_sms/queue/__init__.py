"""The queue's data plane in Redis: keys, jobs, leases, outcomes, quotas, pauses,
delayed jobs and status readers. Knows no Celery."""
