#!/usr/bin/env bash
# A one-machine try-out of the Patroni path (docs/deployment.md): one etcd member, three
# Patroni members from deploy/patroni/patroni.yml (PostgreSQL 16 from pgserver's wheel), the
# database initialised for the switch, and the multi-host DSN printed for `atm-switch serve`.
#
#   deploy/patroni/try-out.sh start [DIR]    # default DIR: /tmp/atm-patroni
#   deploy/patroni/try-out.sh status [DIR]   # patronictl list
#   deploy/patroni/try-out.sh stop [DIR]
#
# Needs: `pip install -e .` in the active Python (for pgserver's binaries), Debian's patroni
# and etcd-server (apt-get install patroni etcd-server). As root, etcd and Patroni run as the
# unprivileged `pgserver` account (PostgreSQL refuses root), which owns DIR.
# Ports: etcd 2379/2380; PostgreSQL 5441-5443; Patroni REST 8011-8013.
set -euo pipefail
action="${1:-start}"
dir="${2:-/tmp/atm-patroni}"
here="$(cd "$(dirname "$0")" && pwd)"
config="$dir/patroni.yml"  # a copy the account can read wherever the checkout is
bin_dir="$(python -c 'from switch.db.replication import bin_dir; print(bin_dir())' 2>/dev/null)"
dsn="postgresql://postgres@127.0.0.1:5441,127.0.0.1:5442,127.0.0.1:5443/postgres?target_session_attrs=read-write"

# Run as the account PostgreSQL may run as (root: pgserver's). A plain command prefix, so
# that "$!" of a background job is the program itself (setpriv and env exec it).
if [ "$(id -u)" = 0 ]; then
  id pgserver >/dev/null 2>&1 || useradd --system --no-create-home pgserver
  as_account=(setpriv --reuid=pgserver --regid=pgserver --init-groups --reset-env
              env PATH="$PATH" HOME="$dir")
else
  as_account=(env)
fi

start() {
  mkdir -p "$dir"
  cp "$here/patroni.yml" "$config"
  if [ "$(id -u)" = 0 ]; then  # DIR owned by the account, its parents and the binaries reachable
    python -c "import sys, pathlib; from switch.db.replication import prepare_directory as p
p(pathlib.Path(sys.argv[1]))" "$dir"
    chown pgserver: "$config"
  fi
  "${as_account[@]}" etcd --name etcd1 --data-dir "$dir/etcd" \
    --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
    --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
    --initial-cluster etcd1=http://127.0.0.1:2380 >>"$dir/etcd.log" 2>&1 &
  echo $! >"$dir/etcd.pid"
  for i in 1 2 3; do
    "${as_account[@]}" PATRONI_NAME="pg$i" \
      PATRONI_RESTAPI_LISTEN="127.0.0.1:801$i" PATRONI_RESTAPI_CONNECT_ADDRESS="127.0.0.1:801$i" \
      PATRONI_POSTGRESQL_LISTEN="127.0.0.1:544$i" PATRONI_POSTGRESQL_CONNECT_ADDRESS="127.0.0.1:544$i" \
      PATRONI_POSTGRESQL_DATA_DIR="$dir/pg$i" PATRONI_POSTGRESQL_BIN_DIR="$bin_dir" \
      PATRONI_POSTGRESQL_PGPASS="$dir/pg$i.pgpass" PATRONI_ETCD3_HOSTS="127.0.0.1:2379" \
      patroni "$config" >>"$dir/pg$i.log" 2>&1 &
    echo $! >"$dir/pg$i.pid"
  done
  echo "waiting for a leader (logs in $dir)"
  for _ in $(seq 1 120); do
    if curl -fs http://127.0.0.1:8011/primary >/dev/null || curl -fs http://127.0.0.1:8012/primary >/dev/null \
        || curl -fs http://127.0.0.1:8013/primary >/dev/null; then
      status
      echo
      echo "initialise the switch's database, then serve on the multi-host DSN:"
      echo "  atm-switch db init --data-dir DATA --dsn '$dsn'"
      echo "  atm-switch serve --data-dir DATA --dsn '$dsn'"
      return 0
    fi
    sleep 1
  done
  echo "no leader after 120 s; see $dir/pg*.log" >&2
  return 1
}

status() {
  "${as_account[@]}" patronictl -c "$config" list
}

stop() {  # members first (each Patroni stops its PostgreSQL and gives up the lock), then etcd
  for name in pg1 pg2 pg3 etcd; do
    [ -f "$dir/$name.pid" ] || continue
    pid="$(cat "$dir/$name.pid")"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    rm -f "$dir/$name.pid"
  done
  for i in 1 2 3; do  # a PostgreSQL whose Patroni was stopped while it was still starting
    pidfile="$dir/pg$i/postmaster.pid"
    [ -f "$pidfile" ] && kill -INT "$(head -1 "$pidfile")" 2>/dev/null || true
  done
}

case "$action" in
  start) start ;;
  status) status ;;
  stop) stop ;;
  *) echo "usage: $0 start|status|stop [DIR]" >&2; exit 2 ;;
esac
