"""The use cases, one module per area; ``handlers.py`` maps each message to one of them.

Consuming an event only decides and records (pending deliveries, digest items, suppressions and
their events) in the consumer's transaction; the dispatcher job sends later. That split is what
makes a replayed event harmless: the decision is keyed, the send happens once per key.
"""
