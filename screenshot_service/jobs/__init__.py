"""Asynchronous jobs: durable queue, workers, signed webhooks, idempotency (SPEC §2, §4).

``install.install_jobs(app)`` adds the /v1/jobs routes and the job workers' cleanup
context to an app made by ``create_app``.
"""
