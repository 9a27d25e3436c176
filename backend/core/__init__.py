"""Settings, database, security and Redis plumbing shared by the API and the worker."""
