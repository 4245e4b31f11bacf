"""``make chaos``: fault tests against real processes and a real broker (issue 8).

The five services run as processes (``bench.chaos.serve``) on SQLite files of the run, a fresh
topic namespace and ports of their own; an in-process SMTP sink records every email. Phases of
load each bring one kind of fault (kill -9 of every service, a broker restart, a rebalance,
duplicates; poison throughout), and after each phase what was produced is compared with what
reporting's read model holds, what notifications decided, what the sink received and the DLQs.
"""
