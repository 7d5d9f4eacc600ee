"""Gateway mode for a connection made by Tencent's legacy client: AddVpnConnEx, unmodified
qcloudapi-sdk-python over plain HTTP, with Tencent's documented defaults (3des-cbc, md5, main
mode, no PFS) and a volume limit, brought up against a customer strongSwan configured only from
`gatehouse peer-config`, with pings both ways and the negotiated algorithms checked.

The site (Gatehouse with --dataplane netns, bridges, address plan) is test_gateway_ipsec.py's;
these tests need what it needs (root, network namespaces, strongSwan) and are skipped, loudly,
without them.
"""

from __future__ import annotations

import json

from test_gateway_ipsec import APPLY, Env, check_negotiated, env, peer_tunnels, site, until  # noqa: F401  (site, env: fixtures)
from test_tencent import Tencent


def test_add_vpn_conn_ex_with_tencent_defaults_up_and_ping(env):
    gw = env.gateway()
    cust = env.customer()
    vpc = env.vpc_host(gw, cust.lan)
    cgw = env.customer_gateway(cust.ips[0])
    tc = Tencent(env.site.server, env.site.root, tls=False, method="POST", signature="HmacSHA256")
    body = tc.call("AddVpnConnEx", {
        "vpcId": gw["VpcId"], "vpnGwId": gw["VpnGatewayId"], "userGwId": cgw, "preSharedKey": "tencent psk+1",
        "spdAcl": json.dumps({env.site.local_subnet: [cust.lan]}),
        "IPsecSet": {"ipsecSaLifetimeTraffic": 604800},
    })
    assert body["code"] == 0, body
    vco, task = body["data"]["vpnConnId"], body["data"]["taskId"]

    def task_done() -> bool:
        status = tc.call("DescribeVpcTaskResult", {"taskId": task})["data"]["status"]
        assert status != 1, env.diag()
        return status == 0

    until(task_done, APPLY, f"task {task} to succeed", env.diag)
    conf = env.bring_up(cust, vco)
    assert "version = 1" in conf, conf
    env.ping_both_ways(cust, vpc)
    (t,) = peer_tunnels(conf)
    sa = next(s for s in cust.charon.ike_sas(t.name) if any(c.get("state") == "INSTALLED" for c in s["children"]))
    check_negotiated(sa, {"IkeEncAlg": "3des", "IkeAuthAlg": "md5", "IkePfs": "group2", "IkeVersion": "ikev1"},
                     {"IpsecEncAlg": "3des", "IpsecAuthAlg": "md5", "IpsecPfs": "disabled"})
    # The volume limit reached the gateway's charon (IKEv1 quick mode logs what it configured).
    log = env.site.dataplane_dir(gw["VpnGatewayId"]) / "charon.log"
    until(lambda: f"configured {604800 * 1024}" in log.read_text(), 5, "life_bytes in the gateway's charon.log",
          env.diag)
