"""The goals domain, free of databases and brokers: the rules (:mod:`.model`), who may do what
(:mod:`.access`) and the ports the use cases reach the world through (:mod:`.ports`)."""
