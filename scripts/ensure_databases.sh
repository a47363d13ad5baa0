#!/usr/bin/env bash
# Make sure the databases the tests talk to answer:
#   PostgreSQL on 127.0.0.1:5432, user postgres, trust auth (no password);
#   MariaDB    on 127.0.0.1:3306, user root, empty password.
# Fast (two queries) when both already answer. Otherwise starts them, and on a machine that has
# neither installs Debian's postgresql / mariadb-server and configures them; then waits until
# they answer, and fails loudly when they do not.
set -euo pipefail

WAIT_SECONDS=${DB_WAIT_SECONDS:-60}
PG_CONF_NAME=90-catalog-agents.conf

say() { echo "ensure_databases: $*" >&2; }
die() {
  say "ERROR: $*"
  exit 1
}

pg_ok() {
  command -v psql >/dev/null 2>&1 &&
    PGCONNECT_TIMEOUT=3 psql -w -X -q -h 127.0.0.1 -p 5432 -U postgres -d postgres -tAc 'select 1' \
      >/dev/null 2>&1
}
my_client() { command -v mariadb 2>/dev/null || command -v mysql 2>/dev/null; }
my_ok() {
  local c
  c=$(my_client) || return 1
  "$c" --connect-timeout=3 --protocol=TCP -h 127.0.0.1 -P 3306 -u root -e 'select 1' \
    >/dev/null 2>&1
}

if pg_ok && my_ok; then
  exit 0
fi

((EUID == 0)) || die "the databases do not answer and I am not root, so I cannot install or start them"

wait_for() {
  local what=$1 check=$2 deadline=$((SECONDS + WAIT_SECONDS))
  while ((SECONDS < deadline)); do
    "$check" && return 0
    sleep 0.5
  done
  return 1
}

# --- install what is missing, in one apt run ----------------------------------------------------
missing=()
compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null || missing+=(postgresql)
[[ -x /usr/sbin/mariadbd || -x /usr/sbin/mysqld ]] || missing+=(mariadb-server)
if ((${#missing[@]})); then
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# --- PostgreSQL -----------------------------------------------------------------------------------
ensure_postgres() {
  pg_ok && return 0
  local ver conf_dir hba started=0
  # The newest installed major version; its cluster "main" (created if missing).
  ver=$(for d in /usr/lib/postgresql/*/bin/postgres; do basename "$(dirname "$(dirname "$d")")"; done |
    sort -V | tail -n 1)
  [[ -n $ver ]] || die "no PostgreSQL server found after installing"
  if [[ ! -d /etc/postgresql/$ver/main ]]; then
    say "creating PostgreSQL $ver cluster main"
    pg_createcluster "$ver" main >/dev/null
  fi
  conf_dir=/etc/postgresql/$ver/main
  hba=$conf_dir/pg_hba.conf

  # Listen on 127.0.0.1:5432; trust local and loopback connections (a test machine only).
  if ! grep -qsE "^\s*port\s*=\s*5432" "$conf_dir/postgresql.conf" "$conf_dir"/conf.d/*.conf; then
    mkdir -p "$conf_dir/conf.d"
    printf "listen_addresses = '127.0.0.1'\nport = 5432\n" >"$conf_dir/conf.d/$PG_CONF_NAME"
    chown postgres:postgres "$conf_dir/conf.d/$PG_CONF_NAME"
  fi
  if ! grep -qE '^\s*host\s+all\s+all\s+127\.0\.0\.1/32\s+trust' "$hba"; then
    say "configuring trust authentication in $hba"
    {
      echo "# catalog-agents: trust local and loopback connections (test machine)"
      echo "local all all trust"
      echo "host all all 127.0.0.1/32 trust"
      echo "host all all ::1/128 trust"
      cat "$hba"
    } >"$hba.new"
    chown postgres:postgres "$hba.new"
    chmod 640 "$hba.new"
    mv "$hba.new" "$hba"
    # A running server must re-read it.
    pg_ctlcluster --skip-systemctl-redirect "$ver" main reload >/dev/null 2>&1 || true
  fi

  if ! pg_ctlcluster --skip-systemctl-redirect "$ver" main status >/dev/null 2>&1; then
    say "starting PostgreSQL $ver"
    pg_ctlcluster --skip-systemctl-redirect "$ver" main start || true
    started=1
  fi
  if ! wait_for postgres pg_ok; then
    say "PostgreSQL log:"
    tail -n 30 "/var/log/postgresql/postgresql-$ver-main.log" >&2 2>/dev/null || true
    die "PostgreSQL does not answer on 127.0.0.1:5432 as postgres without a password (started=$started)"
  fi
  say "PostgreSQL $ver answers on 127.0.0.1:5432"
}

# --- MariaDB --------------------------------------------------------------------------------------
my_socket_ok() {
  local c
  c=$(my_client) || return 1
  "$c" --connect-timeout=3 -u root -e 'select 1' >/dev/null 2>&1
}
my_port_open() { (exec 3<>/dev/tcp/127.0.0.1/3306) 2>/dev/null; }

ensure_mariadb() {
  my_ok && return 0
  local daemon c
  daemon=/usr/sbin/mariadbd
  [[ -x $daemon ]] || daemon=/usr/sbin/mysqld
  install -d -o mysql -g mysql -m 755 /run/mysqld
  if [[ ! -d /var/lib/mysql/mysql ]]; then
    say "initialising the MariaDB data directory"
    (command -v mariadb-install-db >/dev/null && mariadb-install-db --user=mysql \
      --datadir=/var/lib/mysql || mysql_install_db --user=mysql --datadir=/var/lib/mysql) >/dev/null
  fi
  if ! my_port_open; then
    say "starting MariaDB"
    start-stop-daemon --start --oknodo --background --exec "$daemon" -- --user=mysql
  fi
  wait_for mariadb my_port_open || true

  if ! my_ok && wait_for mariadb my_socket_ok; then
    # A fresh Debian install: root logs in through the unix socket only. Give root an empty
    # password, from localhost and from 127.0.0.1 (servers with skip-name-resolve see the latter).
    say "allowing root with an empty password on 127.0.0.1"
    c=$(my_client)
    "$c" -u root <<'SQL'
ALTER USER 'root'@'localhost' IDENTIFIED VIA mysql_native_password USING PASSWORD('') OR unix_socket;
CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '';
GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
FLUSH PRIVILEGES;
SQL
  fi
  if ! wait_for mariadb my_ok; then
    say "MariaDB error log:"
    tail -n 30 /var/log/mysql/error.log >&2 2>/dev/null || true
    die "MariaDB does not answer on 127.0.0.1:3306 as root with an empty password"
  fi
  say "MariaDB answers on 127.0.0.1:3306"
}

ensure_postgres
ensure_mariadb
