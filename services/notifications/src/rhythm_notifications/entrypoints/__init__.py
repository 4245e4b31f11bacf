"""Entrypoints: HTTP, Kafka consumers and timed jobs. They translate and delegate."""
