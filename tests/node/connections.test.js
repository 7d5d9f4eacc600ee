'use strict';
// IPsec-VPN connections through the official Node SDK (@alicloud/pop-core 1.8.0 RPCClient, RPC
// signature v1, GET and POST) against the real gatehouse binary.
//
// pop-core cannot flatten nested structures (clients.md 1(c)): IkeConfig, IpsecConfig,
// HealthCheckConfig and BgpConfig go through JSON.stringify, and the dual-tunnel
// TunnelOptionsSpecification is passed pre-flattened ('TunnelOptionsSpecification.1.Role').
// Spec: shared/spec/actions/{CreateVpnConnection,ModifyVpnConnectionAttribute,DescribeVpnConnections,
// DescribeVpnConnection,DownloadVpnConnectionConfig,DeleteVpnConnection}.yaml.
// Run: node --test tests/node/   (./scripts/test.sh builds the binary first)

const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { REGION, rand, publicIp, plain, waitFor, expectCode, startServer, rpcClient } = require('./harness');

const VCO_RE = /^vco-[a-z0-9]{21}$/;
const UNKNOWN_GW = `vpn-${'z'.repeat(21)}`;
const UNKNOWN_CGW = `cgw-${'z'.repeat(21)}`;
const UNKNOWN_CONN = `vco-${'z'.repeat(21)}`;

// ------------------------------------------------------------------ server

let server;
before(async () => {
  server = await startServer(['--transition-delay-ms', '200'], { tmpPrefix: 'gatehouse-node-conn-' });
});
after(() => server?.stop());

const client = () => rpcClient(server.endpoint);

// ------------------------------------------------------------------ tests

for (const method of ['GET', 'POST']) {
  describe(`pop-core RPCClient ${method}: IPsec connections`, () => {
    const opts = { method, timeout: 10000 };
    const call = (action, params) => client().request(action, { RegionId: REGION, ...params }, opts);

    async function waitActive(id) {
      return waitFor(async () => {
        const g = await call('DescribeVpnGateway', { VpnGatewayId: id });
        return g.Status === 'active' ? g : null;
      }, `${id} active`);
    }

    async function newGateway(extra = {}) {
      const { VpnGatewayId: id } = await call('CreateVpnGateway', { VpcId: `vpc-${rand()}`, Bandwidth: 10, ...extra });
      return waitActive(id);
    }

    async function newCgw(extra = {}) {
      const ip = extra.IpAddress || publicIp();
      const out = await call('CreateCustomerGateway', { IpAddress: ip, ...extra });
      return { id: out.CustomerGatewayId, ip };
    }

    const byRole = (conn) => {
      const opts2 = conn.TunnelOptionsSpecification.TunnelOptions;
      assert.ok(Array.isArray(opts2) && opts2.length === 2, JSON.stringify(conn.TunnelOptionsSpecification));
      return Object.fromEntries(opts2.map((t) => [t.Role, t]));
    };

    test('single tunnel: JSON.stringify configs, describe, list, modify, download, delete', async () => {
      const gw = await newGateway();
      const gwId = gw.VpnGatewayId;
      const cgw = await newCgw({ Asn: 65010 });
      const remote = `192.168.${Math.floor(Math.random() * 250)}.0/24`;
      const created = await call('CreateVpnConnection', {
        VpnGatewayId: gwId, CustomerGatewayId: cgw.id, LocalSubnet: '10.0.0.0/24,10.0.1.0/24', RemoteSubnet: remote,
        Name: `node-${method.toLowerCase()}`, EffectImmediately: true, AutoConfigRoute: false,
        IkeConfig: JSON.stringify({ Psk: 'node-psk-1', IkeVersion: 'ikev2', IkeLifetime: 3600 }),
        IpsecConfig: JSON.stringify({ IpsecPfs: 'group5' }),
        HealthCheckConfig: JSON.stringify({ enable: true, dip: '192.168.99.1', sip: '10.0.0.1', interval: 4, retry: 5 }),
        BgpConfig: JSON.stringify({ EnableBgp: true, LocalAsn: 65001, TunnelCidr: '169.254.100.0/30' }),
        Tags: [{ Key: 'env', Value: 'node' }],
      });
      assert.match(created.VpnConnectionId, VCO_RE);
      assert.equal(created.Name, `node-${method.toLowerCase()}`);
      assert.equal(typeof created.CreateTime, 'number');
      assert.equal(created.Code, undefined);
      const id = created.VpnConnectionId;

      // Asynchronous: the gateway is updating and takes no second change meanwhile.
      assert.equal((await call('DescribeVpnGateway', { VpnGatewayId: gwId })).Status, 'updating');
      assert.equal((await call('DescribeVpnConnection', { VpnConnectionId: id })).State, 'updating');
      await expectCode(call('CreateVpnConnection', {
        VpnGatewayId: gwId, CustomerGatewayId: (await newCgw()).id, LocalSubnet: '10.9.0.0/24',
        RemoteSubnet: '192.168.250.0/24',
      }), 'VpnGateway.Configuring');
      await waitActive(gwId);

      const d = await call('DescribeVpnConnection', { VpnConnectionId: id });
      assert.equal(d.State, 'active');
      assert.equal(d.Status, 'ipsec_sa_established');
      assert.equal(d.VpnGatewayId, gwId);
      assert.equal(d.CustomerGatewayId, cgw.id);
      assert.equal(d.LocalSubnet, '10.0.0.0/24,10.0.1.0/24');
      assert.equal(d.RemoteSubnet, remote);
      assert.equal(d.CreateTime, created.CreateTime);
      assert.equal(typeof d.IkeConfig, 'object', 'IkeConfig is an object');
      assert.deepEqual(plain(d.IkeConfig), {
        Psk: 'node-psk-1', IkeVersion: 'ikev2', IkeMode: 'main', IkeEncAlg: 'aes', IkeAuthAlg: 'md5', IkePfs: 'group2',
        IkeLifetime: 3600, LocalId: gw.InternetIp, RemoteId: cgw.ip,
      });
      assert.deepEqual(plain(d.IpsecConfig), { IpsecEncAlg: 'aes', IpsecAuthAlg: 'md5', IpsecPfs: 'group5', IpsecLifetime: 86400 });
      assert.equal(d.VcoHealthCheck.Enable, 'true');
      assert.equal(d.VcoHealthCheck.Dip, '192.168.99.1');
      assert.equal(d.VcoHealthCheck.Interval, 4);
      assert.equal(d.VcoHealthCheck.Retry, 5);
      assert.equal(d.VcoHealthCheck.Status, 'success');
      assert.equal(d.VpnBgpConfig.EnableBgp, 'true');
      assert.equal(d.VpnBgpConfig.LocalAsn, 65001);
      assert.equal(d.VpnBgpConfig.PeerAsn, 65010);
      assert.equal(d.VpnBgpConfig.LocalBgpIp, '169.254.100.1');
      assert.equal(d.VpnBgpConfig.PeerBgpIp, '169.254.100.2');
      assert.equal(d.VpnBgpConfig.Status, 'success');
      assert.deepEqual(plain(d.Tags.Tag), [{ Key: 'env', Value: 'node' }]);

      const listed = await call('DescribeVpnConnections', { VpnGatewayId: gwId });
      assert.equal(listed.TotalCount, 1);
      assert.ok(Array.isArray(listed.VpnConnections.VpnConnection), JSON.stringify(listed.VpnConnections));
      assert.deepEqual(listed.VpnConnections.VpnConnection.map((x) => x.VpnConnectionId), [id]);
      assert.equal(listed.VpnConnections.VpnConnection[0].IkeConfig.Psk, 'node-psk-1');
      const byCgw = await call('DescribeVpnConnections', { CustomerGatewayId: cgw.id });
      assert.deepEqual(byCgw.VpnConnections.VpnConnection.map((x) => x.VpnConnectionId), [id]);

      // Partial update; the answer is the whole connection.
      const m = await call('ModifyVpnConnectionAttribute', {
        VpnConnectionId: id, Name: 'node-renamed', IpsecConfig: JSON.stringify({ IpsecLifetime: 600 }),
      });
      assert.equal(m.Name, 'node-renamed');
      assert.equal(m.VpnConnectionId, id);
      assert.equal(m.IkeConfig.Psk, 'node-psk-1');
      assert.equal(m.IkeConfig.IkeVersion, 'ikev2');
      assert.deepEqual(plain(m.IpsecConfig), { IpsecEncAlg: 'aes', IpsecAuthAlg: 'md5', IpsecPfs: 'group5', IpsecLifetime: 600 });
      assert.equal(m.LocalSubnet, '10.0.0.0/24,10.0.1.0/24');
      await waitActive(gwId);
      await expectCode(call('ModifyVpnConnectionAttribute', { VpnConnectionId: id, LocalSubnet: '10.0.0.0/99' }),
        'IllegalParam.LocalSubnet', (body) => assert.ok(body.Message.includes('10.0.0.0/99'), body.Message));

      const cfg = (await call('DownloadVpnConnectionConfig', { VpnConnectionId: id })).VpnConnectionConfig;
      assert.equal(cfg.Local, gw.InternetIp);
      assert.equal(cfg.Remote, cgw.ip);
      assert.equal(cfg.LocalSubnet, '10.0.0.0/24,10.0.1.0/24');
      assert.equal(cfg.RemoteSubnet, remote);
      assert.equal(cfg.IkeConfig.Psk, 'node-psk-1');
      assert.equal(cfg.IpsecConfig.IpsecLifetime, 600);
      const bgp = cfg.BgpConfigs.BgpConfig;
      assert.equal(bgp.length, 1);
      assert.equal(bgp[0].TunnelCidr, '169.254.100.0/30');
      assert.equal(bgp[0].PeerBgpIp, '169.254.100.2');

      const tags = await call('ListTagResources', { ResourceType: 'VpnConnection', ResourceId: [id] });
      assert.deepEqual(tags.TagResources.TagResource.map((t) => `${t.TagKey}=${t.TagValue}`), ['env=node']);

      const del = await call('DeleteVpnConnection', { VpnConnectionId: id });
      assert.ok(del.RequestId);
      await waitActive(gwId);
      await expectCode(call('DescribeVpnConnection', { VpnConnectionId: id }), 'InvalidVpnConnectionInstanceId.NotFound');
      await expectCode(call('DownloadVpnConnectionConfig', { VpnConnectionId: id }),
        'InvalidVpnConnectionInstanceId.NotFound');
      const gone = await call('ListTagResources', { ResourceType: 'VpnConnection', ResourceId: [id] });
      assert.deepEqual(plain(gone.TagResources.TagResource), []);
      await call('DeleteCustomerGateway', { CustomerGatewayId: cgw.id });
    });

    test('dual tunnel: pre-flattened TunnelOptionsSpecification', async () => {
      const gw = await newGateway({ DisasterRecoveryVSwitchId: `vsw-${rand()}` });
      const gwId = gw.VpnGatewayId;
      assert.ok(gw.DisasterRecoveryInternetIp && gw.DisasterRecoveryInternetIp !== gw.InternetIp, JSON.stringify(gw));
      const c1 = await newCgw({ Asn: 65010 });
      const c2 = await newCgw({ Asn: 65020 });
      const T = 'TunnelOptionsSpecification';
      const tunnels = {
        [`${T}.1.Role`]: 'master',
        [`${T}.1.CustomerGatewayId`]: c1.id,
        [`${T}.1.EnableDpd`]: true,
        [`${T}.1.TunnelIkeConfig.Psk`]: 'node-master',
        [`${T}.1.TunnelIkeConfig.IkeVersion`]: 'ikev2',
        [`${T}.1.TunnelIkeConfig.IkeAuthAlg`]: 'sha256',
        [`${T}.1.TunnelIpsecConfig.IpsecPfs`]: 'disabled',
        [`${T}.1.TunnelBgpConfig.TunnelCidr`]: '169.254.110.0/30',
        [`${T}.1.TunnelBgpConfig.LocalAsn`]: 65001,
        [`${T}.2.Role`]: 'slave',
        [`${T}.2.CustomerGatewayId`]: c2.id,
        [`${T}.2.EnableNatTraversal`]: false,
        [`${T}.2.TunnelIkeConfig.Psk`]: 'node-slave',
        [`${T}.2.TunnelBgpConfig.TunnelCidr`]: '169.254.110.4/30',
      };
      const base = { VpnGatewayId: gwId, LocalSubnet: '10.5.0.0/24', RemoteSubnet: '192.168.55.0/24' };

      // Wrong mode and missing tunnels first: nothing is created by them.
      await expectCode(call('CreateVpnConnection', { ...base, CustomerGatewayId: c1.id }), 'InvalidParameter');
      await expectCode(call('CreateVpnConnection', {
        ...base, [`${T}.1.Role`]: 'master', [`${T}.1.CustomerGatewayId`]: c1.id,
      }), 'MissingParameter.TunnelOptionsSpecification');
      await expectCode(call('CreateVpnConnection', {
        ...base, ...tunnels, EnableTunnelsBgp: true, IkeConfig: JSON.stringify({ Psk: 'x' }),
      }), 'InvalidParameter');
      // Unflattened, pop-core sends the nested object as the text "[object Object]": refused, not ignored.
      await expectCode(call('CreateVpnConnection', {
        ...base,
        [T]: [{ Role: 'master', CustomerGatewayId: c1.id, TunnelIkeConfig: { Psk: 'lost' } },
          { Role: 'slave', CustomerGatewayId: c2.id }],
      }), 'InvalidParameter');
      await expectCode(call('CreateVpnConnection', { ...base, ...tunnels, EnableTunnelsBgp: true, DryRun: true }),
        'DryRunOperation');
      assert.equal((await call('DescribeVpnConnections', { VpnGatewayId: gwId })).TotalCount, 0);

      const created = await call('CreateVpnConnection', {
        ...base, ...tunnels, EnableTunnelsBgp: true, EffectImmediately: true, Name: 'node-dual',
      });
      const id = created.VpnConnectionId;
      assert.match(id, VCO_RE);
      await waitActive(gwId);

      const d = await call('DescribeVpnConnection', { VpnConnectionId: id });
      assert.equal(d.Name, 'node-dual');
      assert.equal(String(d.EnableTunnelsBgp), 'true');
      const t = byRole(d);
      assert.equal(t.master.InternetIp, gw.InternetIp);
      assert.equal(t.slave.InternetIp, gw.DisasterRecoveryInternetIp);
      assert.ok(t.master.TunnelId && t.slave.TunnelId && t.master.TunnelId !== t.slave.TunnelId);
      assert.equal(t.master.Status, 'ipsec_sa_established');
      assert.equal(t.slave.Status, 'ipsec_sa_established');
      assert.equal(t.master.CustomerGatewayId, c1.id);
      assert.equal(t.slave.CustomerGatewayId, c2.id);
      assert.equal(t.master.TunnelIkeConfig.Psk, 'node-master');
      assert.equal(t.master.TunnelIkeConfig.IkeVersion, 'ikev2');
      assert.equal(t.master.TunnelIkeConfig.IkeAuthAlg, 'sha256');
      assert.equal(t.master.TunnelIkeConfig.LocalId, gw.InternetIp);
      assert.equal(t.master.TunnelIkeConfig.RemoteId, c1.ip);
      assert.equal(t.master.TunnelIpsecConfig.IpsecPfs, 'disabled');
      assert.equal(t.slave.TunnelIkeConfig.Psk, 'node-slave');
      assert.equal(t.slave.TunnelIkeConfig.IkeVersion, 'ikev1');
      assert.equal(t.slave.TunnelIkeConfig.LocalId, gw.DisasterRecoveryInternetIp);
      assert.equal(t.slave.TunnelIkeConfig.RemoteId, c2.ip);
      assert.equal(String(t.slave.EnableNatTraversal), 'false');
      assert.equal(t.master.TunnelBgpConfig.PeerBgpIp, '169.254.110.2');
      assert.equal(t.slave.TunnelBgpConfig.LocalBgpIp, '169.254.110.5');
      assert.equal(String(t.slave.TunnelBgpConfig.PeerAsn), '65020');
      assert.equal(t.master.TunnelBgpConfig.BgpStatus, 'success');

      const cfg = (await call('DownloadVpnConnectionConfig', { VpnConnectionId: id })).VpnConnectionConfig;
      assert.equal(cfg.LocalSubnet, '10.5.0.0/24');
      assert.equal(cfg.RemoteSubnet, '192.168.55.0/24');
      const tcs = cfg.TunnelsConfig.TunnelConfig;
      assert.equal(tcs.length, 2);
      const byId = Object.fromEntries(tcs.map((x) => [x.TunnelId, x]));
      assert.equal(byId[t.master.TunnelId].Local, gw.InternetIp);
      assert.equal(byId[t.master.TunnelId].Remote, c1.ip);
      assert.equal(byId[t.master.TunnelId].IkeConfig.Psk, 'node-master');
      assert.equal(byId[t.slave.TunnelId].Local, gw.DisasterRecoveryInternetIp);
      assert.equal(byId[t.slave.TunnelId].Remote, c2.ip);
      assert.equal(cfg.BgpConfigs.BgpConfig.length, 2);

      // Modify one tunnel, pre-flattened too.
      const m = await call('ModifyVpnConnectionAttribute', {
        VpnConnectionId: id, [`${T}.1.Role`]: 'slave', [`${T}.1.TunnelIkeConfig.Psk`]: 'node-slave-2',
      });
      const mt = byRole(m);
      assert.equal(mt.slave.TunnelIkeConfig.Psk, 'node-slave-2');
      assert.equal(mt.master.TunnelIkeConfig.Psk, 'node-master');
      await waitActive(gwId);

      // Customer gateways in use, the gateway with a connection: dependencies.
      await expectCode(call('DeleteCustomerGateway', { CustomerGatewayId: c2.id }), 'DependencyViolation.VpnConnection');
      await expectCode(call('DeleteVpnGateway', { VpnGatewayId: gwId }), 'DependencyViolation.VpnConnection');
      await call('DeleteVpnConnection', { VpnConnectionId: id });
      await waitActive(gwId);
      await expectCode(call('DescribeVpnConnection', { VpnConnectionId: id }), 'InvalidVpnConnectionInstanceId.NotFound');
      await call('DeleteCustomerGateway', { CustomerGatewayId: c2.id });
      await call('DeleteCustomerGateway', { CustomerGatewayId: c1.id });
      await call('DeleteVpnGateway', { VpnGatewayId: gwId });
    });

    test('cross-resource rules and NotFound codes', async () => {
      const gw = await newGateway();
      const gwId = gw.VpnGatewayId;
      const cgw = await newCgw();
      const base = { VpnGatewayId: gwId, CustomerGatewayId: cgw.id, LocalSubnet: '10.0.0.0/24',
        RemoteSubnet: '192.168.1.0/24' };

      const noIpsec = await newGateway({ EnableIpsec: false, EnableSsl: true });
      await expectCode(call('CreateVpnConnection', { ...base, VpnGatewayId: noIpsec.VpnGatewayId }),
        'VpnGateway.IpsecVpnDisabled');
      const clash = await newCgw({ IpAddress: gw.InternetIp });
      await expectCode(call('CreateVpnConnection', { ...base, CustomerGatewayId: clash.id }),
        'CustomerGateway.ConflictVpnIp');
      await expectCode(call('CreateVpnConnection', { ...base, RemoteSubnet: '192.168.1.0/33' }),
        'IllegalParam.RemoteSubnet', (body) => assert.ok(body.Message.includes('192.168.1.0/33'), body.Message));
      await expectCode(call('CreateVpnConnection', {
        ...base, BgpConfig: JSON.stringify({ EnableBgp: true, TunnelCidr: '169.254.120.0/30' }),
      }), 'MissingParam.CustomerGatewayAsn');
      await expectCode(call('CreateVpnConnection', {
        ...base, BgpConfig: JSON.stringify({ EnableBgp: true, TunnelCidr: '169.254.169.252/30' }),
      }), 'IllegalParam.TunnelCidr');
      await expectCode(call('CreateVpnConnection', { ...base, BgpConfig: JSON.stringify({ EnableBgp: true }) }),
        'MissingParameter.TunnelCidr');
      await expectCode(call('CreateVpnConnection', { ...base, DryRun: true }), 'DryRunOperation');
      await expectCode(call('CreateVpnConnection', { ...base, VpnGatewayId: UNKNOWN_GW }),
        'InvalidVpnGatewayInstanceId.NotFound');
      await expectCode(call('CreateVpnConnection', { ...base, CustomerGatewayId: UNKNOWN_CGW }),
        'InvalidCustomerGatewayInstanceId.NotFound');
      for (const action of ['DescribeVpnConnection', 'DownloadVpnConnectionConfig', 'DeleteVpnConnection']) {
        await expectCode(call(action, { VpnConnectionId: UNKNOWN_CONN }), 'InvalidVpnConnectionInstanceId.NotFound');
      }
      await expectCode(call('ModifyVpnConnectionAttribute', { VpnConnectionId: UNKNOWN_CONN, Name: 'abc' }),
        'InvalidVpnConnectionInstanceId.NotFound');
      assert.equal((await call('DescribeVpnConnections', { VpnGatewayId: gwId })).TotalCount, 0);
      assert.equal((await call('DescribeVpnGateway', { VpnGatewayId: gwId })).Status, 'active');

      // Same VPN gateway and customer gateway: the same IKE, traffic selectors apart.
      const ike = JSON.stringify({ Psk: 'node-shared' });
      const first = await call('CreateVpnConnection', { ...base, IkeConfig: ike, AutoConfigRoute: false });
      await waitActive(gwId);
      await expectCode(call('CreateVpnConnection', {
        ...base, RemoteSubnet: '192.168.2.0/24', IkeConfig: JSON.stringify({ Psk: 'node-other' }),
      }), 'VpnConnectionParamInvalid.SameVpnAndCgwDifferentIkeConfigs');
      await expectCode(call('CreateVpnConnection', {
        ...base, RemoteSubnet: '192.168.1.128/25', IkeConfig: ike, AutoConfigRoute: false,
      }), 'VpnConnectionParamInvalid.SameVpnAndCgwTrafficSelectorOverlap');
      await call('DeleteVpnConnection', { VpnConnectionId: first.VpnConnectionId });
      await waitActive(gwId);
      await call('DeleteCustomerGateway', { CustomerGatewayId: clash.id });
    });
  });
}
