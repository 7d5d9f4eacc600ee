"""The control API (`/_gatehouse/<operation>`), `gatehouse ctl` and `/metrics`, against the real
binary: what a team testing its automation against Gatehouse uses between and inside tests.

- Only requests signed by a root-account AccessKey get in (`health` and `version` answer anyone;
  `serve --control-api open` lets everyone in).
- `reset` drops one account's resources (or all) and nothing of any other account's.
- A fault fails (or delays) exactly the next N matching calls, as an official client sees them,
  with the status and message its Code has everywhere else.
- A forced tunnel status shows in DescribeVpnConnection; `pause`/`resume`/`complete` hold and
  hurry lifecycle transitions.
- `/metrics` parses as Prometheus text and its counters follow the traffic.
"""

from __future__ import annotations

import json
import subprocess
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

import support
from support import (
    BIN,
    ControlClient,
    Creds,
    GatehouseServer,
    KINDS,
    ROOT_AK,
    ROOT_SECRET,
    create_gateway,
    expect_error,
    items,
    make_api,
    public_ip,
    wait_for,
    wait_status,
)

ROOT = Creds(ROOT_AK, ROOT_SECRET, "root")


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    s = GatehouseServer(tmp_path_factory.mktemp("gh-control") / "data",
                        ["--transition-delay-ms", "200"], name="control")
    s.start()
    yield s
    s.stop()


@pytest.fixture
def ctl(srv):
    return ControlClient(srv.endpoint)


@pytest.fixture
def team(srv, ctl):
    """A fresh account with a key, and a clean root account (reset before, faults cleared after)."""
    ctl.call("reset", {"Account": "root"})
    creds = srv.create_account()
    yield creds
    ctl.call("clear-faults")
    ctl.call("resume")


def gateways(api) -> list:
    return items(api.call("DescribeVpnGateways", {"PageSize": 50}), "VpnGateways", "VpnGateway")


# ---------------------------------------------------------------- who gets in


def test_health_and_version_answer_anyone(srv):
    anon = ControlClient(srv.endpoint, creds=None)
    r = anon.get("/_gatehouse/health")
    assert r.status == 200, r
    assert r.json() == {"status": "ok", "store": "ok", "dataplane": "simulated", "lifecycle": "running"}
    v = anon.send("version").json()
    assert v["Version"] and v["ApiVersion"] == "2016-04-28", v


def test_the_control_api_is_refused_to_unsigned_and_non_root_callers(srv):
    anon = ControlClient(srv.endpoint, creds=None)
    r = anon.send("reset")
    assert r.status == 400 and r.json()["Code"] == "MissingAccessKeyId", r
    other = srv.create_account()
    r = ControlClient(srv.endpoint, other).send("reset", {"Account": other.account})
    body = support.check_error_body(r, 403, "Forbidden.NotRootAccount")
    assert "root account" in body["Message"]
    r = ControlClient(srv.endpoint, Creds(ROOT_AK, "wrong-secret")).send("coverage")
    support.check_error_body(r, 400, "SignatureDoesNotMatch")
    # RPC v1 does not sign the path: the signed Action must name the operation.
    r = ControlClient(srv.endpoint).send("reset", action="coverage")
    support.check_error_body(r, 400, "InvalidAction.Mismatch")
    r = ControlClient(srv.endpoint).send("no-such-operation")
    support.check_error_body(r, 404, "InvalidAction.NotFound")


def test_acs3_signs_the_control_path(srv):
    raw = support.RawClient(srv.endpoint)
    r = raw.acs3("coverage", region=None, path="/_gatehouse/coverage")
    assert r.status == 200 and r.json()["TotalCount"] > 40, r
    # ACS3 signs the path: a signature made for the cloud API's `/` does not open the control API.
    r = raw.acs3("coverage", region=None, path="/_gatehouse/coverage", signed_path="/")
    support.check_error_body(r, 400, "SignatureDoesNotMatch")


def test_an_open_control_api_takes_unsigned_calls(server_factory):
    s = server_factory(["--control-api", "open"])
    assert ControlClient(s.endpoint, creds=None).call("reset")["Dropped"] == {}
    # The environment variable says the same.
    s2 = server_factory(env={"GATEHOUSE_CONTROL_API": "open"})
    assert ControlClient(s2.endpoint, creds=None).send("coverage").status == 200


def test_coverage_lists_every_served_action_with_its_seed(srv, ctl):
    cov = ctl.call("coverage")
    actions = {a["Action"]: a["Seed"] for a in cov["Actions"]}
    assert cov["TotalCount"] == len(actions) == len(cov["Actions"])
    assert "000_a8dfb6f03ef4b31c.txt" in actions["CreateVpnConnection"]
    assert actions["DescribeVpnGateway"].startswith("004_0ebe6af7f32410f5.txt lines ")
    dialects = {a["Action"]: a["Dialect"] for a in cov["Actions"]}
    assert {a for a, d in dialects.items() if d == "Tencent"} == {"AddVpnConnEx", "DescribeVpcTaskResult"}
    assert "001_151d47202a51cbfe.txt" in actions["AddVpnConnEx"]
    raw = support.RawClient(srv.endpoint)
    for action in (a for a, d in dialects.items() if d == "Alibaba"):
        # Every listed action is served: none is an unknown action.
        code = raw.rpc(action, {}).json().get("Code")
        assert code != "InvalidAction.NotFound", action
    assert raw.rpc("DescribeVpnGatewaysX", {}).json()["Code"] == "InvalidAction.NotFound"


# ---------------------------------------------------------------- reset


def test_reset_drops_one_accounts_resources_and_leaves_the_others(srv, ctl, team):
    mine, theirs = make_api("classic", srv.endpoint, team), make_api("tea-acs3", srv.endpoint, ROOT)
    gw_mine = create_gateway(mine)["VpnGatewayId"]
    create_gateway(mine)
    mine.call("CreateCustomerGateway", {"IpAddress": public_ip()})
    gw_theirs = create_gateway(theirs)["VpnGatewayId"]
    cgw_theirs = theirs.call("CreateCustomerGateway", {"IpAddress": public_ip()})["CustomerGatewayId"]
    out = ctl.call("reset", {"Account": team.account})
    assert out["Account"] == team.account
    assert out["Dropped"] == {"VpnGateway": 2, "CustomerGateway": 1}, out
    assert gateways(mine) == []
    expect_error(lambda: mine.call("DescribeVpnGateway", {"VpnGatewayId": gw_mine}), 404,
                 "InvalidVpnGatewayInstanceId.NotFound")
    assert [g["VpnGatewayId"] for g in gateways(theirs)] == [gw_theirs]
    theirs.call("DescribeCustomerGateway", {"CustomerGatewayId": cgw_theirs})
    # Pending transitions went with the resources: nothing comes back; the key still works.
    time.sleep(0.5)
    assert gateways(mine) == []
    wait_status(mine, create_gateway(mine)["VpnGatewayId"], "active")
    wait_status(theirs, gw_theirs, "active")
    # The same ClientToken after a reset creates anew (old answers went with their resources).
    token = {"ClientToken": "reset-" + support.rand_suffix(8)}
    first = create_gateway(mine, **token)["VpnGatewayId"]
    ctl.call("reset", {"Account": team.account})
    assert create_gateway(mine, **token)["VpnGatewayId"] != first


def test_reset_without_an_account_drops_every_accounts_resources(srv, ctl, team):
    mine, theirs = make_api("classic", srv.endpoint, team), make_api("classic", srv.endpoint, ROOT)
    create_gateway(mine)
    create_gateway(theirs)
    assert ctl.call("reset")["Dropped"]["VpnGateway"] >= 2
    assert gateways(mine) == [] and gateways(theirs) == []
    # Accounts and keys stay.
    create_gateway(mine)


def test_reset_of_an_unknown_account_is_refused(ctl, team):
    r = ctl.send("reset", {"Account": "no-such-account"})
    support.check_error_body(r, 404, "Account.NotFound")


# ---------------------------------------------------------------- faults


@pytest.mark.parametrize("kind", KINDS)
def test_an_error_fault_meets_exactly_n_calls_then_is_gone(srv, ctl, team, kind):
    api = make_api(kind, srv.endpoint, team)
    ctl.call("add-fault", {"Account": team.account, "TargetAction": "DescribeVpnGateways",
                           "Code": "Throttling.User", "Count": 2})
    # Another account's calls are not affected.
    make_api(kind, srv.endpoint, ROOT).call("DescribeVpnGateways", {})
    for _ in range(2):
        e = expect_error(lambda: api.call("DescribeVpnGateways", {}), 400, "Throttling.User")
        # The message the rate limiter gives for the same Code.
        assert e.message == "Request was denied due to user flow control.", e
    assert api.call("DescribeVpnGateways", {})["TotalCount"] == 0
    assert ctl.call("list-faults", {"Account": team.account})["Faults"] == []


# Every Code a fault can inject, with the status and message the server gives it elsewhere.
INJECTABLE = {
    "InternalError": (500, "The request processing has failed due to some unknown error, exception or failure."),
    "Throttling.User": (400, "Request was denied due to user flow control."),
    "VpnGateway.Configuring": (400, "The specified service is configuring."),
    "OperationDenied.VpnConfiguring": (400, "The associated VPN gateway is being configured. You cannot update the "
                                            "attributes of the customer gateway."),
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("code", sorted(INJECTABLE))
def test_every_injectable_code_reaches_the_sdks_with_its_status_and_message(srv, ctl, team, kind, code):
    api = make_api(kind, srv.endpoint, team)
    ctl.call("add-fault", {"Account": team.account, "TargetAction": "DescribeRegions", "Code": code})
    status, message = INJECTABLE[code]
    e = expect_error(lambda: api.call("DescribeRegions", {}), status, code)
    assert e.message == message, e
    assert api.call("DescribeRegions", {})["Regions"]


def test_a_real_configuring_error_matches_the_injected_one(srv, team):
    api = make_api("classic", srv.endpoint, team)
    gw = create_gateway(api)["VpnGatewayId"]
    # Still `init`: the gateway refuses changes the way an injected fault does.
    e = expect_error(lambda: api.call("DeleteVpnGateway", {"VpnGatewayId": gw}), 400, "VpnGateway.Configuring")
    assert e.message == INJECTABLE["VpnGateway.Configuring"][1]


def test_a_configuring_fault_meets_only_calls_naming_its_resource(srv, ctl, team):
    api = make_api("classic", srv.endpoint, team)
    gw_a, gw_b = create_gateway(api)["VpnGatewayId"], create_gateway(api)["VpnGatewayId"]
    wait_status(api, gw_a, "active")
    wait_status(api, gw_b, "active")
    fault = ctl.call("add-fault", {"Account": team.account, "TargetAction": "ModifyVpnGatewayAttribute",
                                   "ResourceId": gw_b, "Code": "VpnGateway.Configuring"})["Fault"]
    assert fault["ResourceId"] == gw_b and fault["Remaining"] == 1, fault
    api.call("ModifyVpnGatewayAttribute", {"VpnGatewayId": gw_a, "Name": "gw-a"})
    e = expect_error(lambda: api.call("ModifyVpnGatewayAttribute", {"VpnGatewayId": gw_b, "Name": "gw-b"}), 400,
                     "VpnGateway.Configuring")
    assert e.message == "The specified service is configuring."
    assert api.call("ModifyVpnGatewayAttribute", {"VpnGatewayId": gw_b, "Name": "gw-b"})["Name"] == "gw-b"


@pytest.mark.parametrize("kind", ["classic", "tea-acs3"])
def test_a_latency_fault_delays_exactly_n_calls(srv, ctl, team, kind):
    api = make_api(kind, srv.endpoint, team)

    def timed():
        t = time.monotonic()
        api.call("DescribeRegions", {})
        return time.monotonic() - t

    ctl.call("add-fault", {"Account": team.account, "TargetAction": "DescribeRegions", "LatencyMs": 400,
                           "Count": 2})
    assert timed() >= 0.4 and timed() >= 0.4
    assert timed() < 0.3


def test_faults_with_bad_parameters_are_refused(ctl, team):
    def refused(params, code="InvalidParameter", status=400):
        r = ctl.send("add-fault", {"Account": team.account, **params})
        return support.check_error_body(r, status, code)

    assert "cannot be injected" in refused({"TargetAction": "DescribeRegions", "Code": "NoSuchCode"})["Message"]
    refused({"TargetAction": "NoSuchAction", "Code": "InternalError"})
    refused({"TargetAction": "DescribeRegions"})
    refused({"TargetAction": "DescribeRegions", "Code": "InternalError", "Count": 0})
    refused({"TargetAction": "DescribeRegions", "LatencyMs": 60001})
    refused({"TargetAction": "DescribeRegions", "LatencyMs": "soon"})
    refused({"Code": "InternalError"}, code="MissingTargetAction")
    assert ctl.call("list-faults", {"Account": team.account})["Faults"] == []


# ---------------------------------------------------------------- tunnels and lifecycle


def tunnel_status(api, vco: str) -> str:
    return api.call("DescribeVpnConnection", {"VpnConnectionId": vco})["Status"]


@pytest.mark.parametrize("kind", ["classic", "tea-acs3"])
def test_a_forced_tunnel_status_shows_in_describe_vpn_connection(srv, ctl, team, kind):
    api = make_api(kind, srv.endpoint, team)
    gw = create_gateway(api)["VpnGatewayId"]
    wait_status(api, gw, "active")
    cgw = api.call("CreateCustomerGateway", {"IpAddress": public_ip()})["CustomerGatewayId"]
    vco = api.call("CreateVpnConnection", {"VpnGatewayId": gw, "CustomerGatewayId": cgw, "LocalSubnet": "10.0.0.0/24",
                                           "RemoteSubnet": "192.168.7.0/24", "EffectImmediately": True})["VpnConnectionId"]
    wait_status(api, gw, "active")
    wait_for(lambda: tunnel_status(api, vco) == "ipsec_sa_established", what="the tunnel up")
    out = ctl.call("tunnel-status", {"Account": team.account, "VpnConnectionId": vco, "Status": "down"})
    assert [t["Forced"] for t in out["Tunnels"]] == ["ike_sa_not_established"], out
    wait_for(lambda: tunnel_status(api, vco) == "ike_sa_not_established", what="the forced-down tunnel")
    # The gateway itself never left `active`.
    assert api.call("DescribeVpnGateway", {"VpnGatewayId": gw})["Status"] == "active"
    tunnel = out["Tunnels"][0]["TunnelId"]
    ctl.call("tunnel-status", {"Account": team.account, "VpnConnectionId": vco, "TunnelId": tunnel, "Status": "up"})
    wait_for(lambda: tunnel_status(api, vco) == "ipsec_sa_established", what="the forced-up tunnel")
    ctl.call("tunnel-status", {"Account": team.account, "VpnConnectionId": vco, "Status": "down"})
    wait_for(lambda: tunnel_status(api, vco) == "ike_sa_not_established", what="down again")
    # Cleared, the emulator's rules hold again (EffectImmediately: negotiated).
    ctl.call("tunnel-status", {"Account": team.account, "VpnConnectionId": vco, "Status": "clear"})
    wait_for(lambda: tunnel_status(api, vco) == "ipsec_sa_established", what="the rules again")


def test_forcing_an_unknown_or_foreign_connection_is_refused(srv, ctl, team):
    r = ctl.send("tunnel-status", {"Account": team.account, "VpnConnectionId": "vco-" + "z" * 21, "Status": "up"})
    support.check_error_body(r, 404, "InvalidVpnConnectionInstanceId.NotFound")
    r = ctl.send("tunnel-status", {"Account": team.account, "VpnConnectionId": "vco-x", "Status": "sideways"})
    support.check_error_body(r, 400, "InvalidParameter")
    api = make_api("classic", srv.endpoint, team)
    gw = create_gateway(api)["VpnGatewayId"]
    wait_status(api, gw, "active")
    cgw = api.call("CreateCustomerGateway", {"IpAddress": public_ip()})["CustomerGatewayId"]
    vco = api.call("CreateVpnConnection", {"VpnGatewayId": gw, "CustomerGatewayId": cgw, "LocalSubnet": "10.0.0.0/24",
                                           "RemoteSubnet": "192.168.8.0/24"})["VpnConnectionId"]
    r = ctl.send("tunnel-status", {"Account": team.account, "VpnConnectionId": vco, "TunnelId": "tun-x",
                                   "Status": "up"})
    support.check_error_body(r, 404, "InvalidTunnelId.NotFound")
    # Another account's connection is not found, even by the root account's name.
    r = ctl.send("tunnel-status", {"Account": "root", "VpnConnectionId": vco, "Status": "up"})
    support.check_error_body(r, 404, "InvalidVpnConnectionInstanceId.NotFound")


def test_pause_holds_transitions_and_complete_finishes_them(server_factory):
    s = server_factory(["--transition-delay-ms", "60000"])
    ctl, api = ControlClient(s.endpoint), make_api("classic", s.endpoint, ROOT)
    gw = create_gateway(api)["VpnGatewayId"]
    assert api.call("DescribeVpnGateway", {"VpnGatewayId": gw})["Status"] == "init"
    # A minute-long transition, completed now.
    assert ctl.call("complete")["Expedited"] == 1
    wait_status(api, gw, "active", timeout=5)
    ctl.call("pause")
    assert ctl.get("/_gatehouse/health").json()["lifecycle"] == "paused"
    gw2 = create_gateway(api)["VpnGatewayId"]
    out = ctl.call("complete")
    assert out == {"RequestId": out["RequestId"], "Expedited": 1, "Paused": True}
    time.sleep(0.5)
    assert api.call("DescribeVpnGateway", {"VpnGatewayId": gw2})["Status"] == "init", "held while paused"
    ctl.call("resume")
    wait_status(api, gw2, "active", timeout=5)


# ---------------------------------------------------------------- metrics


def scrape(srv) -> dict:
    r = ControlClient(srv.endpoint).get("/metrics")
    assert r.status == 200, r
    samples = {}
    for family in text_string_to_metric_families(r.body.decode()):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def test_metrics_parse_and_follow_the_traffic(srv, ctl, team):
    api = make_api("classic", srv.endpoint, team)
    ok = ("gatehouse_requests_total", (("action", "DescribeRegions"), ("code", "Success")))
    throttled = ("gatehouse_requests_total", (("action", "DescribeRegions"), ("code", "Throttling.User")))
    before = scrape(srv)
    for _ in range(5):
        api.call("DescribeRegions", {})
    ctl.call("add-fault", {"Account": team.account, "TargetAction": "DescribeRegions", "Code": "Throttling.User",
                           "Count": 3})
    for _ in range(3):
        expect_error(lambda: api.call("DescribeRegions", {}), 400, "Throttling.User")
    gw = create_gateway(api)["VpnGatewayId"]
    wait_status(api, gw, "active")
    after = scrape(srv)
    assert after[ok] - before.get(ok, 0) == 5
    assert after[throttled] - before.get(throttled, 0) == 3
    count = ("gatehouse_request_duration_seconds_count", (("action", "DescribeRegions"),))
    assert after[count] - before.get(count, 0) == 8
    assert after[("gatehouse_resources", (("kind", "VpnGateway"), ("status", "active")))] >= 1
    commits = ("gatehouse_store_commit_duration_seconds_count", ())
    assert after[commits] > before.get(commits, 0)
    assert ("gatehouse_reconciler_tasks_queued", ()) in after
    assert after[("gatehouse_reconciler_task_start_delay_seconds_count", ())] > 0


# ---------------------------------------------------------------- gatehouse ctl


def ctl_cli(srv, *args, creds: Creds | None = ROOT) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "GATEHOUSE_ENDPOINT": srv.url}
    if creds:
        env.update({"GATEHOUSE_ACCESS_KEY_ID": creds.ak, "GATEHOUSE_ACCESS_KEY_SECRET": creds.secret})
    return subprocess.run([str(BIN), "ctl", *args], capture_output=True, text=True, timeout=30, env=env,
                          stdin=subprocess.DEVNULL)


def test_gatehouse_ctl_drives_the_control_api(srv, team):
    api = make_api("tea-acs3", srv.endpoint, team)
    assert json.loads(ctl_cli(srv, "health", creds=None).stdout)["status"] == "ok"
    r = ctl_cli(srv, "add-fault", "--account", team.account, "--action", "DescribeVpnGateways",
                "--code", "VpnGateway.Configuring", "--count", "1")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["Fault"]["Code"] == "VpnGateway.Configuring"
    listed = json.loads(ctl_cli(srv, "list-faults", "--account", team.account).stdout)["Faults"]
    assert [f["Action"] for f in listed] == ["DescribeVpnGateways"]
    expect_error(lambda: api.call("DescribeVpnGateways", {}), 400, "VpnGateway.Configuring")
    create_gateway(api)
    r = ctl_cli(srv, "reset", "--account", team.account)
    assert r.returncode == 0 and json.loads(r.stdout)["Dropped"] == {"VpnGateway": 1}, r
    assert gateways(api) == []
    # Unsigned, or signed by another account: refused, and the command fails.
    r = ctl_cli(srv, "reset", "--all", creds=None)
    assert r.returncode != 0 and "MissingAccessKeyId" in r.stdout
    r = ctl_cli(srv, "coverage", creds=team)
    assert r.returncode != 0 and "Forbidden.NotRootAccount" in r.stdout
    # reset names its scope: an account or --all.
    assert ctl_cli(srv, "reset").returncode == 2
