"""Channel-neutral conversation flows.

A flow decides what to say and which options to offer (`Reply`, `Button`);
the channel layer (Telegram today, Matrix later) only renders replies and feeds
input back as text or an action string.
"""
