#!/bin/sh
# A member of the "ha" profile: PgBouncer in front of this member's PostgreSQL (port 6432,
# for reads and for other clients), and Patroni managing PostgreSQL (port 5432).
set -eu
cat > /tmp/pgbouncer.ini <<INI
[databases]
gridsvc = host=127.0.0.1 port=5432 dbname=gridsvc
[pgbouncer]
listen_addr = 0.0.0.0
listen_port = 6432
auth_type = scram-sha-256
auth_file = /tmp/pgbouncer.users
pool_mode = session
max_client_conn = 1000
default_pool_size = 50
ignore_startup_parameters = extra_float_digits,options
INI
printf '"gridsvc" "%s"\n' "$PATRONI_SUPERUSER_PASSWORD" > /tmp/pgbouncer.users
pgbouncer -d /tmp/pgbouncer.ini
exec patroni /etc/patroni/patroni.yml
