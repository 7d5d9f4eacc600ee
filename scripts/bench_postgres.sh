#!/usr/bin/env bash
# Reproducible benchmark (not a test) of the store engines side by side: the same release server
# on embedded SQLite and on PostgreSQL (a throwaway instance on a Unix socket, started here and
# stopped by PID), then two nodes sharing the PostgreSQL database. Each seeds 10 000 VPN
# gateways, then measures signed DescribeVpnGateways (first page of 10) and durable
# CreateCustomerGateway. BENCHMARKS.md records the results.
#
#   scripts/bench_postgres.sh [seconds-per-run]
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-10}"
cargo build --release --bins --quiet
bin=target/release
python=${PYTHON:-python3}
[ -x .venv/bin/python ] && python=.venv/bin/python
work=$(mktemp -d)
chmod 755 "$work"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  "$python" tests/sdk/pg.py stop --dir "$work/pg" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

export ALIBABA_CLOUD_ACCESS_KEY_ID=LTAIbenchmarkKey0000000 ALIBABA_CLOUD_ACCESS_KEY_SECRET=benchmarkSecret0123456789abcd
export GATEHOUSE_ROOT_ACCESS_KEY_ID=$ALIBABA_CLOUD_ACCESS_KEY_ID GATEHOUSE_ROOT_ACCESS_KEY_SECRET=$ALIBABA_CLOUD_ACCESS_KEY_SECRET
# Nodes sharing a database share the master key.
GATEHOUSE_MASTER_KEY=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
export GATEHOUSE_MASTER_KEY

echo "== PostgreSQL: $("$python" tests/sdk/pg.py start --dir "$work/pg" --database bench | grep -o 'GATEHOUSE_TEST_PG_SOCKET=[^ ]*')"
pg_url=$("$python" tests/sdk/pg.py url --dir "$work/pg" --database bench)

# start NAME PORT [serve args…]: a node, waited for until it answers.
start() {
  local name=$1 port=$2
  shift 2
  "$bin/gatehouse" serve --listen "127.0.0.1:$port" --data-dir "$work/$name" --transition-delay-ms 0 \
    --quota-vpn-gateways 20000 --quota-customer-gateways 10000000 "$@" >"$work/$name.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 500); do
    if bench "$port" --action DescribeRegions --requests 1 --connections 1 --timeout 1s >/dev/null 2>&1; then
      grep 'gatehouse store' "$work/$name.log" || true
      return
    fi
    sleep 0.02
  done
  echo "$name did not start: $(tail -5 "$work/$name.log")" >&2
  exit 1
}
bench() {
  local port=$1
  shift
  "$bin/gatehouse-bench" --endpoint "http://127.0.0.1:$port" --param RegionId=cn-hangzhou "$@"
}
# The two measurements on one node (PORT).
measure() {
  local port=$1
  echo "-- seeding 10000 VPN gateways"
  bench "$port" --action CreateVpnGateway --param VpcId=vpc-bench --param Bandwidth=10 --requests 10000 \
    --connections 16 --duration 300s | grep -E 'throughput'
  echo "-- DescribeVpnGateways (first page of 10 of 10000), 8 connections"
  bench "$port" --action DescribeVpnGateways --param PageSize=10 --duration "${secs}s" --connections 8 | grep -E 'requests|throughput|latency'
  echo "-- CreateCustomerGateway (durable creates), 32 connections"
  bench "$port" --action CreateCustomerGateway --param-template "IpAddress={ip}" --duration "${secs}s" --connections 32 \
    | grep -E 'requests|throughput|latency'
}

echo "== one node, SQLite"
start sqlite 28101
measure 28101
echo "== one node, PostgreSQL"
start pg1 28102 --database-url "$pg_url"
measure 28102

echo "== two nodes, one PostgreSQL database (each driven by its own client at once)"
start pg2 28103 --database-url "$pg_url"
clients=()
for port in 28102 28103; do
  bench "$port" --action DescribeVpnGateways --param PageSize=10 --duration "${secs}s" --connections 8 \
    >"$work/read-$port.out" &
  clients+=($!)
done
wait "${clients[@]}"
for port in 28102 28103; do echo "-- DescribeVpnGateways on :$port"; grep -E 'requests|throughput' "$work/read-$port.out"; done
# Each client counts from a range of its own (fresh addresses: {ip} follows the counter).
clients=()
for port in 28102 28103; do
  start_at=$([ "$port" = 28103 ] && echo 100000000 || echo 200000000)
  bench "$port" --action CreateCustomerGateway --param-template "IpAddress={ip}" --counter-start "$start_at" \
    --duration "${secs}s" --connections 32 >"$work/create-$port.out" &
  clients+=($!)
done
wait "${clients[@]}"
for port in 28102 28103; do echo "-- CreateCustomerGateway on :$port"; grep -E 'requests|throughput|first non' "$work/create-$port.out"; done
