"""Adapters: the database, SMTP, Web Push, webhooks, templates and signed tokens."""
