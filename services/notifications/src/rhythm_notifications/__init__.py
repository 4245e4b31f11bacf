"""Rhythm notifications: email, push and webhooks that people act on, never spam."""
