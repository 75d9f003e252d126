#!/usr/bin/env bash
# Starts the local servers the connector tests talk to, when they are
# installed but down: PostgreSQL (5432), MariaDB (3306), Redis (6379),
# RabbitMQ (5672), Mosquitto (1883) and NATS with JetStream (4222). Each is
# started the way the machine starts it; a server that is not installed, or
# that will not start, is reported, and its tests skip saying why. It also
# configures what the change-data-capture tests need (see the end).
# Idempotent; never fails the run.
set -u

up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_up PORT NAME: waits up to 60 s for a server to accept connections.
wait_up() {
	for _ in $(seq 1 120); do
		up "$1" && return 0
		sleep 0.5
	done
	echo "start-services: $2 did not come up on 127.0.0.1:$1; its tests will skip"
	return 1
}

start() { # PORT NAME BINARY COMMAND...
	local port=$1 name=$2 bin=$3
	shift 3
	if up "$port"; then
		return 0
	fi
	if ! command -v "$bin" >/dev/null 2>&1 && [ ! -x "$bin" ]; then
		echo "start-services: $name is not installed; its tests will skip"
		return 0
	fi
	echo "start-services: starting $name"
	"$@" >/tmp/start-services-"$name".log 2>&1 || echo "start-services: could not start $name (see /tmp/start-services-$name.log)"
	wait_up "$port" "$name"
}

if [ -d /etc/postgresql ]; then
	start 5432 postgresql pg_ctlcluster pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
fi
start 3306 mariadb /usr/sbin/mariadbd start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
start 6379 redis redis-server redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log
start 5672 rabbitmq rabbitmq-server rabbitmq-server -detached
start 1883 mosquitto mosquitto mosquitto -d -c /etc/mosquitto/mosquitto.conf
start 4222 nats /usr/sbin/nats-server start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log

# Change data capture (connector/pgcdc, connector/mysqlcdc) needs
# PostgreSQL's wal_level=logical and MariaDB's binary log in ROW format;
# the CDC connectors' sections below set them and restart the server when
# needed.

# PostgreSQL: logical decoding (connector/pgcdc). wal_level only changes
# on a restart, so restart only when the running server is not already at
# logical; ALTER SYSTEM writes postgresql.auto.conf and needs the superuser.
if [ -d /etc/postgresql ] && up 5432 && command -v psql >/dev/null 2>&1; then
	pg_wal=$(psql -h 127.0.0.1 -U postgres -d postgres -Atc 'SHOW wal_level' 2>/dev/null)
	if [ -n "$pg_wal" ] && [ "$pg_wal" != logical ]; then
		echo "start-services: PostgreSQL wal_level is $pg_wal; setting logical and restarting"
		if psql -h 127.0.0.1 -U postgres -d postgres -qc 'ALTER SYSTEM SET wal_level = logical' >/tmp/start-services-pgcdc.log 2>&1; then
			pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main restart >>/tmp/start-services-pgcdc.log 2>&1 ||
				echo "start-services: could not restart PostgreSQL (see /tmp/start-services-pgcdc.log); CDC tests will skip"
			wait_up 5432 postgresql
		else
			echo "start-services: could not set wal_level=logical (see /tmp/start-services-pgcdc.log); CDC tests will skip"
		fi
	fi
fi
# MariaDB (connector/mysqlcdc): the binary log on, in ROW format with full
# row images, and a server id. The settings go to
# /etc/mysql/mariadb.conf.d/60-sluice-cdc.cnf (my.cnf is made to include
# that directory, as Debian's own my.cnf does); mariadbd is restarted only
# when the running server does not have them yet.
mariadb_cdc() {
	command -v mariadb >/dev/null 2>&1 || command -v mysql >/dev/null 2>&1 || return 0
	[ -x /usr/sbin/mariadbd ] || return 0
	local cli
	cli=$(command -v mariadb || command -v mysql)
	# mariadb_cdc_vars prints "ON ROW FULL" when the server is ready for CDC.
	mariadb_cdc_vars() {
		"$cli" -uroot -h127.0.0.1 -P3306 -N -B -e "SHOW VARIABLES WHERE Variable_name IN ('log_bin', 'binlog_format', 'binlog_row_image')" 2>/dev/null |
			sort | awk '{v[$1] = $2} END {if (NR == 3) print v["log_bin"], v["binlog_format"], v["binlog_row_image"]}'
	}
	up 3306 || return 0
	local dir=/etc/mysql/mariadb.conf.d conf=/etc/mysql/mariadb.conf.d/60-sluice-cdc.cnf
	local want='[mysqld]
# Written by sluice scripts/start-services.sh for change data capture.
log_bin = mysql-bin
binlog_format = ROW
binlog_row_image = FULL
binlog_row_metadata = FULL
binlog_expire_logs_seconds = 86400
server_id = 1'
	if [ "$(cat "$conf" 2>/dev/null)" != "$want" ]; then
		mkdir -p "$dir" && printf '%s\n' "$want" >"$conf" ||
			{ echo "start-services: cannot write $conf; the MariaDB CDC tests will skip"; return 0; }
	fi
	if [ -f /etc/mysql/my.cnf ] && ! grep -q "^!includedir $dir" /etc/mysql/my.cnf; then
		printf '\n!includedir %s/\n' "$dir" >>/etc/mysql/my.cnf ||
			{ echo "start-services: cannot include $dir in /etc/mysql/my.cnf"; return 0; }
	fi
	local vars
	vars=$(mariadb_cdc_vars)
	if [ "$vars" = "ON ROW FULL" ]; then
		# Column names in the binlog's table maps (dynamic, no restart):
		# events logged before a schema change decode with their own schema.
		"$cli" -uroot -h127.0.0.1 -P3306 -e "SET GLOBAL binlog_row_metadata = 'FULL'" >/dev/null 2>&1
		return 0
	fi
	echo "start-services: restarting mariadb for the binary log (was: ${vars:-unknown})"
	if command -v mariadb-admin >/dev/null 2>&1; then
		mariadb-admin -uroot -h127.0.0.1 shutdown >/dev/null 2>&1
	else
		mysqladmin -uroot -h127.0.0.1 shutdown >/dev/null 2>&1
	fi
	# The port closes before the process has exited; wait for the process.
	for _ in $(seq 1 120); do
		start-stop-daemon --status --exec /usr/sbin/mariadbd || break
		sleep 0.5
	done
	start 3306 mariadb /usr/sbin/mariadbd start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
	vars=$(mariadb_cdc_vars)
	[ "$vars" = "ON ROW FULL" ] || echo "start-services: mariadb still has log_bin/binlog_format/binlog_row_image = ${vars:-unknown}; the MariaDB CDC tests will skip"
}
mariadb_cdc

exit 0
