"""nasforge server: FastAPI + SQLModel store of experiments, runs and events, with live streams and access control."""
