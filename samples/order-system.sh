#!/usr/bin/env bash
# The order system as separate processes over Kafka: starts saga-mock-broker (a local Kafka),
# inventory-service and payment-service, runs order-service (the engine and the orders
# participant) until its orders have ended, prints a consistency summary read from the three
# services' own databases, and stops everything it started.
#
#   bash samples/order-system.sh [BUILD_DIR]     (default: build)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="$(cd "${1:-$root/build}" && pwd)"
data="${SAGA_DEMO_DATA:-$PWD/order-system-data}"
rm -rf "$data" && mkdir -p "$data"

pids=()
stop_all() {  # the services first, the broker they talk to last; SIGKILL after 30 s
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -TERM "${pids[i]}" 2>/dev/null || continue
    (sleep 30 && kill -KILL "${pids[i]}" 2>/dev/null &&
      echo "process ${pids[i]} ignored SIGTERM for 30 s: killed" >&2) &
    local killer=$!
    wait "${pids[i]}" 2>/dev/null || true
    kill "$killer" 2>/dev/null || true
  done
}
trap stop_all EXIT

# Waits for a line starting with $2 in file $1 (a child's output).
await() {
  for _ in $(seq 1 600); do
    if grep -q "^$2" "$1" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "timed out waiting for '$2' in $1:" >&2; cat "$1" >&2; return 1
}

"$build/apps/saga-mock-broker/saga-mock-broker" --partitions 4 \
  --topic inventory.commands --topic payment.commands --topic orders.commands \
  --topic orchestrator.replies >"$data/broker.out" 2>"$data/broker.err" </dev/null &
pids+=($!)
await "$data/broker.out" "bootstrap="
bootstrap="$(sed -n 's/^bootstrap=//p' "$data/broker.out")"
echo "saga-mock-broker on $bootstrap"

"$build/samples/inventory-service" --bootstrap "$bootstrap" --db "$data/inventory.db" \
  >"$data/inventory.out" 2>"$data/inventory.err" &
pids+=($!)
"$build/samples/payment-service" --bootstrap "$bootstrap" --db "$data/payment.db" \
  --flaky-every 4 >"$data/payment.out" 2>"$data/payment.err" &
pids+=($!)
await "$data/inventory.out" "inventory-service: ready"
await "$data/payment.out" "payment-service: ready"
echo "inventory-service and payment-service ready"

"$build/samples/order-service" --bootstrap "$bootstrap" --data "$data/order-service" \
  2>"$data/order-service.err"

q() { sqlite3 "$1" "$2"; }
held=$(q "$data/inventory.db" "SELECT count(*) FROM reservations WHERE status = 'held'")
released=$(q "$data/inventory.db" "SELECT count(*) FROM reservations WHERE status = 'released'")
charged=$(q "$data/payment.db" "SELECT count(*) FROM charges WHERE refunded = 0")
refunded=$(q "$data/payment.db" "SELECT count(*) FROM charges WHERE refunded = 1")
confirmed=$(q "$data/order-service/orders.db" "SELECT count(*) FROM confirmed")
verdict=INCONSISTENT
if [ "$held" = "$confirmed" ] && [ "$charged" = "$confirmed" ]; then verdict=consistent; fi
echo
echo "summary from the services' own databases: inventory $held held, $released released |" \
  "payment $charged charged, $refunded refunded | orders $confirmed confirmed | $verdict"
echo "data and each process's output in $data/"
[ "$verdict" = consistent ]
