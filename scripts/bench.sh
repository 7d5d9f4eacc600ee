#!/usr/bin/env bash
# Reproducible benchmark (not a test): starts a release server on loopback with a fresh data
# directory, seeds it, and drives it with `gatehouse-bench`. Results go to stdout; BENCHMARKS.md
# records them. Usage: scripts/bench.sh [seconds-per-run] [all|ssl|idle|https]  (ssl, idle, https: only
# that part)
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-10}"
part="${2:-all}"
cargo build --release --bins --quiet
bin=target/release
data=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
tls_port=$((port + 1))
export ALIBABA_CLOUD_ACCESS_KEY_ID=LTAIbenchmarkKey0000000 ALIBABA_CLOUD_ACCESS_KEY_SECRET=benchmarkSecret0123456789abcd
export GATEHOUSE_ROOT_ACCESS_KEY_ID=$ALIBABA_CLOUD_ACCESS_KEY_ID GATEHOUSE_ROOT_ACCESS_KEY_SECRET=$ALIBABA_CLOUD_ACCESS_KEY_SECRET
endpoint="http://127.0.0.1:$port"
bench() { "$bin/gatehouse-bench" --endpoint "$endpoint" --param RegionId=cn-hangzhou "$@"; }
# The same over HTTPS, trusting the certificate the server generated into its data directory.
bench_tls() {
  "$bin/gatehouse-bench" --endpoint "https://127.0.0.1:$tls_port" --ca-cert "$data/tls/cert.pem" \
    --param RegionId=cn-hangzhou "$@"
}
# Lookups: runs Python code ($1; the other arguments are sys.argv[3:]) in which api(Action, **params)
# sends one signed GET and returns the JSON answer, and items(Action, Item, **params) pages through a
# list (`<Item>s.<Item>`).
py() {
  python3 - "$endpoint" "$@" <<'PY'
import sys, json, urllib.request, urllib.parse, hmac, hashlib, base64, uuid, datetime, os, itertools, collections
def pct(s): return urllib.parse.quote(s, safe='-_.~')
def api(action, **params):
    p = {"Action": action, "Version": "2016-04-28", "Format": "JSON", "RegionId": "cn-hangzhou",
         "AccessKeyId": os.environ["ALIBABA_CLOUD_ACCESS_KEY_ID"], "SignatureMethod": "HMAC-SHA1",
         "SignatureVersion": "1.0", "SignatureNonce": uuid.uuid4().hex,
         "Timestamp": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
         **{k: str(v) for k, v in params.items()}}
    canon = "&".join(f"{pct(k)}={pct(v)}" for k, v in sorted(p.items()))
    key = (os.environ["ALIBABA_CLOUD_ACCESS_KEY_SECRET"] + "&").encode()
    p["Signature"] = base64.b64encode(hmac.new(key, ("GET&%2F&" + pct(canon)).encode(), hashlib.sha1).digest()).decode()
    return json.load(urllib.request.urlopen(sys.argv[1] + "/?" + urllib.parse.urlencode(p, quote_via=urllib.parse.quote)))
def items(action, item, **params):
    for page in itertools.count(1):
        body = api(action, PageSize=50, PageNumber=page, **params)
        yield from body[item + "s"][item]
        if page * 50 >= body["TotalCount"]: return
exec(sys.argv[2])
PY
}

# Start to first answered request: launch, then send signed requests until one succeeds.
start_ns=$(date +%s%N)
"$bin/gatehouse" serve --listen "127.0.0.1:$port" --tls-listen "127.0.0.1:$tls_port" --data-dir "$data" --transition-delay-ms 0 \
  --quota-vpn-gateways 20000 --quota-customer-gateways 1000000 --quota-vpn-connections 100000 >"$data/server.log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 1 300); do
  if bench --action DescribeRegions --requests 1 --connections 1 --timeout 1s >/dev/null 2>&1; then break; fi
  sleep 0.01
done
echo "start to first answered request: $(( ($(date +%s%N) - start_ns) / 1000000 )) ms (includes the bench client's own start)"
sleep 1
echo "idle RSS: $(awk '/VmRSS/ {print $2, $3}' "/proc/$pid/status")"

if [ "$part" = all ]; then
echo "== seeding 10000 VPN gateways"
bench --action CreateVpnGateway --param VpcId=vpc-bench --param Bandwidth=10 --requests 10000 --connections 16 --duration 120s | tail -n 4
gw=$(py 'print(api("DescribeVpnGateways", PageSize=1)["VpnGateways"]["VpnGateway"][0]["VpnGatewayId"])')
echo "== DescribeVpnGateway ($gw)"
bench --action DescribeVpnGateway --param "VpnGatewayId=$gw" --duration "${secs}s" --connections 8
echo "== DescribeVpnGateways (first page of 10 of 10000)"
bench --action DescribeVpnGateways --param PageSize=10 --duration "${secs}s" --connections 8
echo "== DescribeVpnGateways (page 500 of 10 of 10000: OFFSET 4990)"
bench --action DescribeVpnGateways --param PageSize=10 --param PageNumber=500 --duration "${secs}s" --connections 8
echo "== CreateCustomerGateway (durable creates)"
bench --action CreateCustomerGateway --param-template 'IpAddress={ip}' --duration "${secs}s" --connections 32

# IPsec connections on 100 of the gateways, paired with 10 customer gateways (gateway i with customer
# gateway i mod 10, so every connection on a gateway shares its customer gateway with the others and
# is checked against all of them: same IKE config, non-overlapping selectors). Fixed PSK, a unique
# RemoteSubnet per connection, AutoConfigRoute=false (no policy routes).
py 'print(*itertools.islice((g["VpnGatewayId"] for g in items("DescribeVpnGateways", "VpnGateway")), 100), sep="\n")' >"$data/gateways"
py 'print(*(api("CreateCustomerGateway", IpAddress=f"12.0.0.{i}")["CustomerGatewayId"] for i in range(1, 11)), sep="\n")' >"$data/cgws"
# --wait-active: after each create, the bench connection polls DescribeVpnGateway until the gateway is
# `active` again (the reconciler has applied the change and made the connection `active`); it counts
# only connections that got there, per second of the whole run. Connection i of 10 uses only gateways
# i, i+10, … so no create meets VpnGateway.Configuring from another bench connection.
connect() {
  bench --action CreateVpnConnection --param-file "VpnGatewayId=${GATEWAYS:-$data/gateways}" --param-file "CustomerGatewayId=$data/cgws" \
    --param LocalSubnet=10.0.0.0/24 --param-template 'RemoteSubnet={ip}/32' --param 'IkeConfig={"Psk":"benchpsk1"}' \
    --param AutoConfigRoute=false --wait-active --connections 10 "$@"
}
echo "== seeding 10000 VPN connections (100 on each of 100 gateways), each to active"
connect --requests 10000 --duration 300s
echo "== DescribeVpnConnections (first page of 10 of 10000)"
bench --action DescribeVpnConnections --param PageSize=10 --duration "${secs}s" --connections 8
echo "== DescribeVpnConnections (page 500 of 10 of 10000: OFFSET 4990)"
bench --action DescribeVpnConnections --param PageSize=10 --param PageNumber=500 --duration "${secs}s" --connections 8
echo "== CreateVpnConnection to active (on the same 100 gateways, 100+ connections each)"
connect --counter-start 10000 --duration "${secs}s"
py 'states = collections.Counter(c["State"] for c in items("DescribeVpnConnections", "VpnConnection"))
gws = collections.Counter(api("DescribeVpnGateway", VpnGatewayId=g)["Status"] for g in open(sys.argv[3]).read().split())
print(f"check: VPN connections by State {dict(states)}; the 100 gateways by Status {dict(gws)}")
if set(states) != {"active"} or set(gws) != {"active"}: sys.exit("check failed: not everything is active")' "$data/gateways"
# Flat in the number of connections a gateway already has: 10 more gateways, each seeded to 300
# connections, then the same measurement (compare with the run at 100+ above).
py 'print(*itertools.islice((g["VpnGatewayId"] for g in items("DescribeVpnGateways", "VpnGateway")), 100, 110), sep="\n")' >"$data/gateways300"
echo "== seeding 3000 VPN connections (300 on each of 10 more gateways)"
GATEWAYS="$data/gateways300" connect --counter-start 1000000 --requests 3000 --duration 300s | tail -n 3
echo "== CreateVpnConnection to active (on those 10 gateways, 300+ connections each)"
GATEWAYS="$data/gateways300" connect --counter-start 2000000 --duration "${secs}s"
echo "RSS after load: $(awk '/VmRSS/ {print $2, $3}' "/proc/$pid/status")"

fi

# Reads beside 1 000 idle keep-alive connections (a client holding connections open must not
# slow the others): the same DescribeVpnGateway run without and with them, alternated (plain,
# idle, plain, idle, plain) so that each idle run has a plain run on either side: the store grows
# with every request (spent nonces), which slows later runs by itself.
if [ "$part" = all ] || [ "$part" = idle ]; then
  gw=$(py 'print(api("CreateVpnGateway", VpcId="vpc-bench-idle", Bandwidth=10)["VpnGatewayId"])')
  for round in 1 2 3; do
    echo "== DescribeVpnGateway ($gw), plain ($round)"
    bench --action DescribeVpnGateway --param "VpnGatewayId=$gw" --duration "${secs}s" --connections 8
    [ "$round" = 3 ] && break
    python3 - "$port" "$((secs + 20))" >"$data/idle.out" 2>&1 <<'PY' &
import socket, sys, time
held = [socket.create_connection(("127.0.0.1", int(sys.argv[1]))) for _ in range(1000)]
print(f"holding {len(held)} idle connections", flush=True)
time.sleep(float(sys.argv[2]))
PY
    holder=$!
    for _ in $(seq 1 100); do grep -q holding "$data/idle.out" 2>/dev/null && break; sleep 0.1; done
    sleep 1
    echo "== DescribeVpnGateway ($gw) beside $(grep -o 'holding [0-9]*' "$data/idle.out" | cut -d' ' -f2) idle connections ($round)"
    bench --action DescribeVpnGateway --param "VpnGatewayId=$gw" --duration "${secs}s" --connections 8
    kill "$holder" 2>/dev/null; wait "$holder" 2>/dev/null || true
  done
fi

# Signed reads over HTTPS (keep-alive: one handshake per connection) beside plain HTTP, alternated.
if [ "$part" = all ] || [ "$part" = https ]; then
  py 'for _ in range(10): api("CreateVpnGateway", VpcId="vpc-bench-tls", Bandwidth=10)'
  for round in 1 2; do
    echo "== DescribeVpnGateways (first page of 10), plain HTTP ($round)"
    bench --action DescribeVpnGateways --param PageSize=10 --duration "${secs}s" --connections 8
    echo "== DescribeVpnGateways (first page of 10), HTTPS ($round)"
    bench_tls --action DescribeVpnGateways --param PageSize=10 --duration "${secs}s" --connections 8
  done
fi

if [ "$part" = all ] || [ "$part" = ssl ]; then
# SSL-VPN client certificates: 200 gateways with SSL-VPN (SslConnections=20, so 20 certificates
# each), a server on each. Every CreateSslVpnClientCert makes a P-256 key pair and signs a
# certificate, then the gateway applies it (`updating` -> `active`, which --wait-active waits for:
# the requests carry the server's gateway as VpnGatewayId, which the action ignores).
py 'import time
gws = [api("CreateVpnGateway", VpcId="vpc-bench-ssl", Bandwidth=10, EnableSsl="true", SslConnections=20)["VpnGatewayId"] for _ in range(200)]
def settle(g):
    for _ in range(500):
        if api("DescribeVpnGateway", VpnGatewayId=g)["Status"] == "active": return
        time.sleep(0.01)
    sys.exit(f"{g} did not become active")
for g in gws: settle(g)
servers = [api("CreateSslVpnServer", VpnGatewayId=g, ClientIpPool="192.168.0.0/24", LocalSubnet="10.0.0.0/8")["SslVpnServerId"] for g in gws]
for g in gws: settle(g)
open(sys.argv[3], "w").write("\n".join(gws) + "\n"); open(sys.argv[4], "w").write("\n".join(servers) + "\n")' "$data/sslgws" "$data/sslservers"
echo "== CreateSslVpnClientCert to active (200 servers, key generation and signing included)"
bench --action CreateSslVpnClientCert --param-file "VpnGatewayId=$data/sslgws" --param-file "SslVpnServerId=$data/sslservers" \
  --param-template 'Name=c{n}' --wait-active --connections 10 --requests 4000 --duration "${secs}s"
cert=$(py 'print(api("DescribeSslVpnClientCerts", PageSize=1)["SslVpnClientCertKeys"]["SslVpnClientCertKey"][0]["SslVpnClientCertId"])')
echo "== DescribeSslVpnClientCert ($cert: certificate, key and OpenVPN profile)"
bench --action DescribeSslVpnClientCert --param "SslVpnClientCertId=$cert" --duration "${secs}s" --connections 8
fi
echo "RSS at the end: $(awk '/VmRSS/ {print $2, $3}' "/proc/$pid/status")"
