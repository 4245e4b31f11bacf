"""Pure rules of the people service: people and org units, syncs, erasure, data keys. No I/O."""
