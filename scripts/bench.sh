#!/usr/bin/env bash
# Reproducible benchmark (not a test): starts a release server on loopback with a fresh data
# directory, seeds it, and drives it with `gatehouse-bench`. Results go to stdout; BENCHMARKS.md
# records them. Usage: scripts/bench.sh [seconds-per-run]
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-10}"
cargo build --release --bins --quiet
bin=target/release
data=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
export ALIBABA_CLOUD_ACCESS_KEY_ID=LTAIbenchmarkKey0000000 ALIBABA_CLOUD_ACCESS_KEY_SECRET=benchmarkSecret0123456789abcd
export GATEHOUSE_ROOT_ACCESS_KEY_ID=$ALIBABA_CLOUD_ACCESS_KEY_ID GATEHOUSE_ROOT_ACCESS_KEY_SECRET=$ALIBABA_CLOUD_ACCESS_KEY_SECRET
endpoint="http://127.0.0.1:$port"
bench() { "$bin/gatehouse-bench" --endpoint "$endpoint" --param RegionId=cn-hangzhou "$@"; }

# Start to first answered request: launch, then send signed requests until one succeeds.
start_ns=$(date +%s%N)
"$bin/gatehouse" serve --listen "127.0.0.1:$port" --data-dir "$data" --transition-delay-ms 0 \
  --quota-vpn-gateways 20000 --quota-customer-gateways 1000000 >"$data/server.log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 1 300); do
  if bench --action DescribeRegions --requests 1 --connections 1 --timeout 1s >/dev/null 2>&1; then break; fi
  sleep 0.01
done
echo "start to first answered request: $(( ($(date +%s%N) - start_ns) / 1000000 )) ms (includes the bench client's own start)"
sleep 1
echo "idle RSS: $(awk '/VmRSS/ {print $2, $3}' "/proc/$pid/status")"

echo "== seeding 10000 VPN gateways"
bench --action CreateVpnGateway --param VpcId=vpc-bench --param Bandwidth=10 --requests 10000 --connections 16 --duration 120s | tail -n 4
gw=$(bench --action DescribeVpnGateways --param PageSize=1 --requests 1 --connections 1 --json 2>/dev/null >/dev/null; \
     python3 - "$endpoint" <<'PY'
import sys, json, urllib.request, urllib.parse, hmac, hashlib, base64, uuid, datetime, os
def pct(s): return urllib.parse.quote(s, safe='-_.~')
p = {"Action": "DescribeVpnGateways", "Version": "2016-04-28", "Format": "JSON", "RegionId": "cn-hangzhou",
     "PageSize": "1", "AccessKeyId": os.environ["ALIBABA_CLOUD_ACCESS_KEY_ID"], "SignatureMethod": "HMAC-SHA1",
     "SignatureVersion": "1.0", "SignatureNonce": uuid.uuid4().hex,
     "Timestamp": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
canon = "&".join(f"{pct(k)}={pct(v)}" for k, v in sorted(p.items()))
sts = "GET&%2F&" + pct(canon)
key = (os.environ["ALIBABA_CLOUD_ACCESS_KEY_SECRET"] + "&").encode()
p["Signature"] = base64.b64encode(hmac.new(key, sts.encode(), hashlib.sha1).digest()).decode()
body = json.load(urllib.request.urlopen(sys.argv[1] + "/?" + urllib.parse.urlencode(p)))
print(body["VpnGateways"]["VpnGateway"][0]["VpnGatewayId"])
PY
)
echo "== DescribeVpnGateway ($gw)"
bench --action DescribeVpnGateway --param "VpnGatewayId=$gw" --duration "${secs}s" --connections 8
echo "== DescribeVpnGateways (first page of 10 of 10000)"
bench --action DescribeVpnGateways --param PageSize=10 --duration "${secs}s" --connections 8
echo "== DescribeVpnGateways (page 500 of 10 of 10000: OFFSET 4990)"
bench --action DescribeVpnGateways --param PageSize=10 --param PageNumber=500 --duration "${secs}s" --connections 8
echo "== CreateCustomerGateway (durable creates)"
bench --action CreateCustomerGateway --param-template 'IpAddress={ip}' --duration "${secs}s" --connections 32
echo "RSS after load: $(awk '/VmRSS/ {print $2, $3}' "/proc/$pid/status")"
