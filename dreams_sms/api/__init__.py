"""The HTTP face: a REST API and a read-only dashboard, served by one process."""
