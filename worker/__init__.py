"""The worker bridge: Celery tasks that launch, watch, cancel and requeue runs, locally and on SLURM."""
