"""What intake decided and what follows from it (routing, timeline, notifications)."""
