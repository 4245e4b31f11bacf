-- postgresql: create_kit_tables
CREATE TABLE idempotency_keys (
    tenant_id VARCHAR(128) NOT NULL,
    principal VARCHAR(128) NOT NULL,
    key VARCHAR(200) NOT NULL,
    request_hash VARCHAR(64) NOT NULL,
    status_code INTEGER NOT NULL,
    response TEXT NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT pk_idempotency_keys PRIMARY KEY (tenant_id, principal, key)
);

COMMENT ON TABLE idempotency_keys IS 'Responses to writes sent with an Idempotency-Key header.';

CREATE TABLE inbox (
    consumer VARCHAR(120) NOT NULL,
    event_id VARCHAR(64) NOT NULL,
    processed_at TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT pk_inbox PRIMARY KEY (consumer, event_id)
);

COMMENT ON TABLE inbox IS 'Consumed event ids per consumer: a duplicate has no second effect.';

CREATE TABLE outbox (
    seq BIGSERIAL NOT NULL,
    event_id VARCHAR(64) NOT NULL,
    topic VARCHAR(200) NOT NULL,
    key VARCHAR(300) NOT NULL,
    event_type VARCHAR(120) NOT NULL,
    headers JSON NOT NULL,
    payload TEXT NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    published_at TIMESTAMP WITH TIME ZONE,
    CONSTRAINT pk_outbox PRIMARY KEY (seq),
    CONSTRAINT uq_outbox_event_id UNIQUE (event_id)
);

COMMENT ON TABLE outbox IS 'Transactional outbox: events committed with their state change, relayed in order.';

CREATE INDEX ix_outbox_unpublished ON outbox (seq) WHERE published_at IS NULL;

-- postgresql: add_housekeeping_indexes
CREATE INDEX ix_outbox_published_at ON outbox (published_at);

CREATE INDEX ix_inbox_processed_at ON inbox (processed_at);

CREATE INDEX ix_idempotency_keys_created_at ON idempotency_keys (created_at);

-- postgresql: create_people_directory
CREATE TABLE directory_employees (
    tenant_id VARCHAR(128) NOT NULL,
    employee_id VARCHAR(128) NOT NULL,
    email VARCHAR(320),
    display_name VARCHAR(200),
    manager_id VARCHAR(128),
    org_unit_id VARCHAR(128),
    time_zone VARCHAR(64) NOT NULL,
    locale VARCHAR(35) NOT NULL,
    hired_on DATE,
    active BOOLEAN NOT NULL,
    deactivated_at TIMESTAMP WITH TIME ZONE,
    profile_at TIMESTAMP WITH TIME ZONE,
    profile_event_id VARCHAR(64),
    deactivation_at TIMESTAMP WITH TIME ZONE,
    deactivation_event_id VARCHAR(64),
    CONSTRAINT pk_directory_employees PRIMARY KEY (tenant_id, employee_id)
);

COMMENT ON TABLE directory_employees IS 'The people directory: employees as rhythm.people.v1 last said (kit).';

CREATE INDEX ix_directory_employees_manager ON directory_employees (tenant_id, manager_id);

CREATE INDEX ix_directory_employees_org_unit ON directory_employees (tenant_id, org_unit_id);

CREATE TABLE directory_org_units (
    tenant_id VARCHAR(128) NOT NULL,
    org_unit_id VARCHAR(128) NOT NULL,
    name VARCHAR(200) NOT NULL,
    parent_id VARCHAR(128),
    head_id VARCHAR(128),
    version_at TIMESTAMP WITH TIME ZONE NOT NULL,
    version_event_id VARCHAR(64) NOT NULL,
    CONSTRAINT pk_directory_org_units PRIMARY KEY (tenant_id, org_unit_id)
);

COMMENT ON TABLE directory_org_units IS 'The people directory: org units as rhythm.people.v1 last said (kit).';

CREATE INDEX ix_directory_org_units_parent ON directory_org_units (tenant_id, parent_id);

CREATE INDEX ix_directory_org_units_head ON directory_org_units (tenant_id, head_id);

-- postgresql: create_audit_log
CREATE TABLE audit_log (
    seq BIGSERIAL NOT NULL,
    tenant_id VARCHAR(128) NOT NULL,
    at TIMESTAMP WITH TIME ZONE NOT NULL,
    actor_id VARCHAR(128) NOT NULL,
    subject_id VARCHAR(128) NOT NULL,
    action VARCHAR(32) NOT NULL,
    target VARCHAR(300) NOT NULL,
    allowed BOOLEAN NOT NULL,
    CONSTRAINT pk_audit_log PRIMARY KEY (seq)
);

COMMENT ON TABLE audit_log IS 'Who read or was refused private texts, and changes to who may see them (kit).';

CREATE INDEX ix_audit_log_at ON audit_log (at);

CREATE INDEX ix_audit_log_subject ON audit_log (tenant_id, subject_id, at);

-- postgresql: add_directory_erasure
ALTER TABLE directory_employees ADD COLUMN erased_at TIMESTAMP WITH TIME ZONE;

CREATE TABLE directory_keys (
    tenant_id VARCHAR(128) NOT NULL,
    employee_id VARCHAR(128) NOT NULL,
    key_id VARCHAR(128) NOT NULL,
    wrapped_key VARCHAR(512),
    destroyed_at TIMESTAMP WITH TIME ZONE,
    CONSTRAINT pk_directory_keys PRIMARY KEY (tenant_id, employee_id)
);

COMMENT ON TABLE directory_keys IS 'Per-person data keys from rhythm.keys.v1, wrapped (kit; crypto-shredding).';

-- sqlite: create_kit_tables
CREATE TABLE idempotency_keys (
    tenant_id VARCHAR(128) NOT NULL,
    principal VARCHAR(128) NOT NULL,
    "key" VARCHAR(200) NOT NULL,
    request_hash VARCHAR(64) NOT NULL,
    status_code INTEGER NOT NULL,
    response TEXT NOT NULL,
    created_at DATETIME NOT NULL,
    CONSTRAINT pk_idempotency_keys PRIMARY KEY (tenant_id, principal, "key")
);

CREATE TABLE inbox (
    consumer VARCHAR(120) NOT NULL,
    event_id VARCHAR(64) NOT NULL,
    processed_at DATETIME NOT NULL,
    CONSTRAINT pk_inbox PRIMARY KEY (consumer, event_id)
);

CREATE TABLE outbox (
    seq INTEGER NOT NULL,
    event_id VARCHAR(64) NOT NULL,
    topic VARCHAR(200) NOT NULL,
    "key" VARCHAR(300) NOT NULL,
    event_type VARCHAR(120) NOT NULL,
    headers JSON NOT NULL,
    payload TEXT NOT NULL,
    created_at DATETIME NOT NULL,
    published_at DATETIME,
    CONSTRAINT pk_outbox PRIMARY KEY (seq),
    CONSTRAINT uq_outbox_event_id UNIQUE (event_id)
);

CREATE INDEX ix_outbox_unpublished ON outbox (seq) WHERE published_at IS NULL;

-- sqlite: add_housekeeping_indexes
CREATE INDEX ix_outbox_published_at ON outbox (published_at);

CREATE INDEX ix_inbox_processed_at ON inbox (processed_at);

CREATE INDEX ix_idempotency_keys_created_at ON idempotency_keys (created_at);

-- sqlite: create_people_directory
CREATE TABLE directory_employees (
    tenant_id VARCHAR(128) NOT NULL,
    employee_id VARCHAR(128) NOT NULL,
    email VARCHAR(320),
    display_name VARCHAR(200),
    manager_id VARCHAR(128),
    org_unit_id VARCHAR(128),
    time_zone VARCHAR(64) NOT NULL,
    locale VARCHAR(35) NOT NULL,
    hired_on DATE,
    active BOOLEAN NOT NULL,
    deactivated_at DATETIME,
    profile_at DATETIME,
    profile_event_id VARCHAR(64),
    deactivation_at DATETIME,
    deactivation_event_id VARCHAR(64),
    CONSTRAINT pk_directory_employees PRIMARY KEY (tenant_id, employee_id)
);

CREATE INDEX ix_directory_employees_manager ON directory_employees (tenant_id, manager_id);

CREATE INDEX ix_directory_employees_org_unit ON directory_employees (tenant_id, org_unit_id);

CREATE TABLE directory_org_units (
    tenant_id VARCHAR(128) NOT NULL,
    org_unit_id VARCHAR(128) NOT NULL,
    name VARCHAR(200) NOT NULL,
    parent_id VARCHAR(128),
    head_id VARCHAR(128),
    version_at DATETIME NOT NULL,
    version_event_id VARCHAR(64) NOT NULL,
    CONSTRAINT pk_directory_org_units PRIMARY KEY (tenant_id, org_unit_id)
);

CREATE INDEX ix_directory_org_units_parent ON directory_org_units (tenant_id, parent_id);

CREATE INDEX ix_directory_org_units_head ON directory_org_units (tenant_id, head_id);

-- sqlite: create_audit_log
CREATE TABLE audit_log (
    seq INTEGER NOT NULL,
    tenant_id VARCHAR(128) NOT NULL,
    at DATETIME NOT NULL,
    actor_id VARCHAR(128) NOT NULL,
    subject_id VARCHAR(128) NOT NULL,
    action VARCHAR(32) NOT NULL,
    target VARCHAR(300) NOT NULL,
    allowed BOOLEAN NOT NULL,
    CONSTRAINT pk_audit_log PRIMARY KEY (seq)
);

CREATE INDEX ix_audit_log_at ON audit_log (at);

CREATE INDEX ix_audit_log_subject ON audit_log (tenant_id, subject_id, at);

-- sqlite: add_directory_erasure
ALTER TABLE directory_employees ADD COLUMN erased_at DATETIME;

CREATE TABLE directory_keys (
    tenant_id VARCHAR(128) NOT NULL,
    employee_id VARCHAR(128) NOT NULL,
    key_id VARCHAR(128) NOT NULL,
    wrapped_key VARCHAR(512),
    destroyed_at DATETIME,
    CONSTRAINT pk_directory_keys PRIMARY KEY (tenant_id, employee_id)
);
