"""The goals use cases, one module per area; :mod:`rhythm_goals.handlers` maps each command and
event to its function. They reach storage and the people directory only through the unit of
work's ports (:mod:`rhythm_goals.domain.ports`), so each runs as well against the SQL adapters
as against the tests' in-memory fakes."""
