-- One database per service, each owned by its own role: no service can read another's tables.
-- Runs once, when the PostgreSQL container starts on an empty data directory.
-- Development passwords (docker-compose.yml binds PostgreSQL to 127.0.0.1); Kubernetes takes
-- DATABASE_URL from a Secret instead.
CREATE ROLE goals LOGIN PASSWORD 'goals';
CREATE DATABASE goals OWNER goals;

CREATE ROLE checkins LOGIN PASSWORD 'checkins';
CREATE DATABASE checkins OWNER checkins;

CREATE ROLE notifications LOGIN PASSWORD 'notifications';
CREATE DATABASE notifications OWNER notifications;

CREATE ROLE reporting LOGIN PASSWORD 'reporting';
CREATE DATABASE reporting OWNER reporting;

CREATE ROLE people LOGIN PASSWORD 'people';
CREATE DATABASE people OWNER people;

-- Nobody but the owner may connect to a service's database.
REVOKE CONNECT ON DATABASE goals, checkins, notifications, reporting, people FROM PUBLIC;
