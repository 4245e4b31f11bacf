"""Erasure (GDPR Art. 17, issue 14): reports keep their counts, nothing names the person.

On ``EmployeeErased``, in the transaction of the batch that carries it (with the stored
positions), for every read-model generation (``handlers.erase_person``):

* the person's facts (obligations, check-ins, reflections, feedback given and received, goals
  they own) move to a pseudonymous id, ``erased-<hash of tenant, id and a random salt kept
  nowhere>``: every count and rollup stays as it was (their rows among the small-group rule's
  contributors move to the same id), and nobody can tell whose they were; the titles of goals
  they owned are blanked;
* their org history and current row move to the same id with the name blanked, so a later
  rebuild of a fact still attributes it to the unit they were in;
* the kit's directory keeps the id as a tombstone and destroys their data key; published outbox
  rows and stored answers that name them go;
* ``PersonDataErased(service="reporting")`` goes out through the kit's outbox (the relay
  publishes it), once: a duplicate ``EmployeeErased`` finds the tombstone and reports nothing.

The person's id remains where it is the id of others' facts (the manager of someone's check-in,
the head of a unit), as in every service. On SQLite the ingest runs
``PRAGMA wal_checkpoint(TRUNCATE)`` after the batch commits (see entrypoints/consumers.py).
"""

from __future__ import annotations

import hashlib
import secrets

SERVICE = "reporting"


def pseudonym(tenant: str, employee_id: str) -> str:
    """A fresh id for the person's facts; the salt is forgotten, so nothing maps it back."""
    salt = secrets.token_bytes(16)
    digest = hashlib.sha256(b"\x1f".join([tenant.encode(), employee_id.encode(), salt]))
    return f"erased-{digest.hexdigest()[:24]}"
