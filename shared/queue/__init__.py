"""The queue between services: broker factory and named message contracts."""
