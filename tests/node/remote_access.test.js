'use strict';
// Remote access through the official Node SDK (@alicloud/pop-core RPCClient, GET and POST)
// against the real gatehouse binary: SSL-VPN servers and client certificates (with their
// material), the server log, the IPsec server, certificate associations.
// Spec: shared/spec/actions/{CreateSslVpnServer,ModifySslVpnServer,DescribeSslVpnServers,
// DeleteSslVpnServer,CreateSslVpnClientCert,ModifySslVpnClientCert,DescribeSslVpnClientCerts,
// DeleteSslVpnClientCert,DescribeVpnSslServerLogs,CreateIpsecServer,UpdateIpsecServer,
// ListIpsecServers,DeleteIpsecServer,ListVpnCertificateAssociations}.yaml.
// Run: node --test tests/node/   (./scripts/test.sh builds the binary first)

const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const { REGION, rand, waitFor, expectCode, startServer, rpcClient } = require('./harness');

let server;
before(async () => {
  server = await startServer(['--transition-delay-ms', '100'], { tmpPrefix: 'gatehouse-node-ra-' });
});
after(() => server?.stop());

for (const method of ['GET', 'POST']) {
  describe(`pop-core RPCClient ${method}: remote access`, () => {
    const opts = { method, timeout: 10000 };
    const call = (action, params) => rpcClient(server.endpoint).request(action, { RegionId: REGION, ...params }, opts);

    const waitActive = (id) =>
      waitFor(async () => {
        const g = await call('DescribeVpnGateway', { VpnGatewayId: id });
        return g.Status === 'active' ? g : null;
      }, `${id} active`);

    async function sslGateway() {
      const { VpnGatewayId: id } = await call('CreateVpnGateway', {
        VpcId: `vpc-${rand()}`, Bandwidth: 10, EnableSsl: true, SslConnections: 5,
      });
      return waitActive(id);
    }

    test('SSL-VPN server, a client certificate with its material, the log', async () => {
      const gw = await sslGateway();
      const created = await call('CreateSslVpnServer', {
        VpnGatewayId: gw.VpnGatewayId, ClientIpPool: '192.168.50.0/24', LocalSubnet: '10.10.0.0/16', Name: 'node.ssl',
      });
      assert.match(created.SslVpnServerId, /^vss-[a-z0-9]{21}$/);
      assert.equal(created.Name, 'node.ssl');
      // While the gateway applies it, other changes wait; one server per gateway.
      await expectCode(call('ModifySslVpnServer', { SslVpnServerId: created.SslVpnServerId, Port: 1196 }),
        'VpnGateway.Configuring');
      await waitActive(gw.VpnGatewayId);
      await expectCode(call('CreateSslVpnServer', {
        VpnGatewayId: gw.VpnGatewayId, ClientIpPool: '192.168.51.0/24', LocalSubnet: '10.11.0.0/16',
      }), 'Resource.QuotaFull');

      const list = await call('DescribeSslVpnServers', { VpnGatewayId: gw.VpnGatewayId });
      assert.equal(list.TotalCount, 1);
      const s = list.SslVpnServers.SslVpnServer[0];
      assert.deepEqual(
        [s.Proto, s.Cipher, s.Port, s.Compress, s.MaxConnections, s.InternetIp, s.LocalSubnet],
        ['UDP', 'AES-128-CBC', 1194, false, 5, gw.InternetIp, '10.10.0.0/16'],
      );

      const modified = await call('ModifySslVpnServer', { SslVpnServerId: created.SslVpnServerId, Port: 1195, Proto: 'TCP' });
      assert.deepEqual([modified.Port, modified.Proto], [1195, 'TCP']);
      assert.equal(modified.IDaaSRegionId, undefined, 'ModifySslVpnServer does not answer IDaaSRegionId');
      await waitActive(gw.VpnGatewayId);

      const cert = await call('CreateSslVpnClientCert', { SslVpnServerId: created.SslVpnServerId, Name: 'laptop' });
      assert.match(cert.SslVpnClientCertId, /^vsc-[a-z0-9]{21}$/);
      await waitActive(gw.VpnGatewayId);
      const one = await call('DescribeSslVpnClientCert', { SslVpnClientCertId: cert.SslVpnClientCertId });
      assert.equal(one.Status, 'normal');
      // The certificate is the CA's, for the client, and the key is its key.
      const ca = new crypto.X509Certificate(one.CaCert);
      const leaf = new crypto.X509Certificate(one.ClientCert);
      assert.ok(leaf.verify(ca.publicKey), 'signed by the server CA');
      assert.ok(leaf.checkPrivateKey(crypto.createPrivateKey(one.ClientKey)), 'the key matches');
      assert.match(leaf.subject, new RegExp(`CN=${cert.SslVpnClientCertId}`));
      assert.equal(Date.parse(leaf.validTo) / 1000 | 0, Math.floor(one.EndTime / 1000));
      assert.match(one.ClientConfig, new RegExp(`^remote ${gw.InternetIp.replace(/\./g, '\\.')} 1195$`, 'm'));
      assert.match(one.ClientConfig, /^proto tcp-client$/m);

      const renamed = await call('ModifySslVpnClientCert', { SslVpnClientCertId: cert.SslVpnClientCertId, Name: 'laptop.2' });
      assert.deepEqual([renamed.SslVpnClientCertId, renamed.Name], [cert.SslVpnClientCertId, 'laptop.2']);
      await expectCode(call('ModifySslVpnClientCert', { SslVpnClientCertId: cert.SslVpnClientCertId, Name: '9bad' }),
        'InvalidName');
      const certs = await call('DescribeSslVpnClientCerts', { SslVpnServerId: created.SslVpnServerId });
      assert.deepEqual(certs.SslVpnClientCertKeys.SslVpnClientCertKey.map((c) => c.Name), ['laptop.2']);

      await call('DeleteSslVpnClientCert', { SslVpnClientCertId: cert.SslVpnClientCertId });
      await waitActive(gw.VpnGatewayId);
      await expectCode(call('DescribeSslVpnClientCert', { SslVpnClientCertId: cert.SslVpnClientCertId }),
        'InvalidSslVpnClientCertId.NotFound');

      const logs = await call('DescribeVpnSslServerLogs', { VpnSslServerId: created.SslVpnServerId, MinutePeriod: 10, PageSize: 50 });
      const lines = logs.Data.Logs;
      assert.equal(logs.Count, lines.length);
      for (const l of lines) assert.match(l, /^\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4} us=\d+ /);
      const text = lines.join('\n');
      assert.match(text, /SIGHUP\[hard,\] received, process restarting/);
      assert.match(text, /Listening for incoming TCP connection on \[AF_INET\][\d.]+:1195/);
      assert.match(text, new RegExp(`${cert.SslVpnClientCertId} certificate revoked`));
      await expectCode(call('DescribeVpnSslServerLogs', { VpnSslServerId: created.SslVpnServerId }), 'MissingParam.MinutePeriod');

      await call('DeleteSslVpnServer', { SslVpnServerId: created.SslVpnServerId });
      await waitActive(gw.VpnGatewayId);
      assert.equal((await call('DescribeSslVpnServers', { VpnGatewayId: gw.VpnGatewayId })).TotalCount, 0);
    });

    test('IPsec server: create, update, list, delete', async () => {
      const gw = await sslGateway();
      const created = await call('CreateIpsecServer', {
        VpnGatewayId: gw.VpnGatewayId, LocalSubnet: '10.20.0.0/16,10.21.0.0/16', ClientIpPool: '192.168.60.0/24',
        IpSecServerName: 'node-ips', IkeConfig: JSON.stringify({ IkeEncAlg: 'aes256', IkePfs: 'group14' }),
      });
      assert.match(created.IpsecServerId, /^iss-[a-z0-9]{21}$/);
      assert.match(created.CreationTime, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
      await waitActive(gw.VpnGatewayId);
      await call('UpdateIpsecServer', { IpsecServerId: created.IpsecServerId, Psk: 'node-psk-1', EffectImmediately: true });
      await waitActive(gw.VpnGatewayId);
      const list = await call('ListIpsecServers', { VpnGatewayId: gw.VpnGatewayId });
      assert.equal(list.TotalCount, 1);
      assert.equal(list.NextToken, '');
      const s = list.IpsecServers[0];
      assert.deepEqual(
        [s.IpsecServerName, s.Psk, s.EffectImmediately, s.IkeConfig.IkeEncAlg, s.IkeConfig.IkePfs, s.IkeConfig.IkeVersion, s.IkeConfig.LocalId],
        ['node-ips', 'node-psk-1', true, 'aes256', 'group14', 'ikev2', gw.InternetIp],
      );
      await expectCode(call('CreateIpsecServer', {
        VpnGatewayId: gw.VpnGatewayId, LocalSubnet: '10.30.0.0/16', ClientIpPool: '192.168.61.0/24',
      }), 'OperationFailed.IPsecServerExist');
      await call('DeleteIpsecServer', { IpsecServerId: created.IpsecServerId });
      await waitActive(gw.VpnGatewayId);
      assert.equal((await call('ListIpsecServers', { VpnGatewayId: gw.VpnGatewayId })).TotalCount, 0);
    });

    test('certificate associations: empty list, Normal gateways refused, unknown certificates', async () => {
      const list = await call('ListVpnCertificateAssociations', { MaxResults: 5 });
      assert.deepEqual([list.TotalCount, list.MaxResults, list.NextToken], [0, 5, '']);
      const gw = await sslGateway();
      await expectCode(call('AssociateVpnGatewayWithCertificate', {
        VpnGatewayId: gw.VpnGatewayId, CertificateType: 'Signature', CertificateId: 'not-registered',
      }), 'OperationUnsupported.VpnType');
      const { VpnGatewayId: sm } = await call('CreateVpnGateway', {
        VpcId: `vpc-${rand()}`, Bandwidth: 10, VpnType: 'NationalStandard',
      });
      await waitActive(sm);
      await expectCode(call('AssociateVpnGatewayWithCertificate', {
        VpnGatewayId: sm, CertificateType: 'Encryption', CertificateId: 'not-registered',
      }), 'InvalidCertificateId.NotFound');
      // Dissociating what is not associated changes nothing, as a retry expects.
      await call('DissociateVpnGatewayWithCertificate', {
        VpnGatewayId: sm, CertificateType: 'Encryption', CertificateId: 'not-registered',
      });
      await expectCode(call('DissociateVpnGatewayWithCertificate', {
        VpnGatewayId: `vpn-${'z'.repeat(21)}`, CertificateType: 'Encryption', CertificateId: 'x',
      }), 'InvalidVpnGatewayInstanceId.NotFound');
    });
  });
}
