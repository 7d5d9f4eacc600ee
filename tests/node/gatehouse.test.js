'use strict';
// Integration tests: the official Node SDK (@alicloud/pop-core 1.8.0 RPCClient,
// RPC signature v1) against the real gatehouse binary, with GET and POST.
// Run: node --test tests/node/   (./scripts/test.sh builds the binary first)

const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { SECRET, REGION, rand, publicIp, waitFor, expectCode, startServer, rpcClient } = require('./harness');

// ------------------------------------------------------------------ server

let server;
before(async () => { server = await startServer(['--transition-delay-ms', '200']); });
after(() => server?.stop());

const client = (secret, accessKeyId) => rpcClient(server.endpoint, secret, accessKeyId);

// ------------------------------------------------------------------ tests

for (const method of ['GET', 'POST']) {
  describe(`pop-core RPCClient ${method}`, () => {
    const opts = { method, timeout: 10000 };
    const call = (action, params) => client().request(action, { RegionId: REGION, ...params }, opts);

    async function describeStatus(id) {
      try {
        return (await call('DescribeVpnGateway', { VpnGatewayId: id })).Status;
      } catch (err) {
        if (err.code === 'InvalidVpnGatewayInstanceId.NotFound') return null;
        throw err;
      }
    }

    test('VPN gateway: create, describe, list, modify, delete', async () => {
      const vpc = `vpc-${rand()}`;
      const created = await call('CreateVpnGateway', {
        VpcId: vpc, Bandwidth: 20, Name: `node-${method.toLowerCase()}`, EnableSsl: true, SslConnections: 5,
        InstanceChargeType: 'PREPAY', Period: 1, AutoPay: true,
      });
      assert.match(created.VpnGatewayId, /^vpn-[a-z0-9]{21}$/);
      assert.equal(created.Name, `node-${method.toLowerCase()}`);
      assert.ok(created.RequestId);
      assert.equal(created.Code, undefined);
      const id = created.VpnGatewayId;

      const d = await waitFor(async () => {
        const g = await call('DescribeVpnGateway', { VpnGatewayId: id });
        return g.Status === 'active' ? g : null;
      }, `${id} active`);
      assert.equal(d.VpcId, vpc);
      assert.equal(d.Spec, '20M');
      assert.equal(d.SslVpn, 'enable');
      assert.equal(d.IpsecVpn, 'enable');
      assert.equal(d.SslMaxConnections, 5);
      assert.equal(d.ChargeType, 'Prepay');
      assert.equal(d.BusinessStatus, 'Normal');
      assert.equal(d.AutoPropagate, true);
      assert.equal(typeof d.CreateTime, 'number');
      assert.ok(Array.isArray(d.Tags.Tag) && d.Tags.Tag.length === 0, JSON.stringify(d.Tags));

      const listed = await call('DescribeVpnGateways', { VpcId: vpc });
      assert.equal(listed.TotalCount, 1);
      assert.deepEqual(listed.VpnGateways.VpnGateway.map((g) => g.VpnGatewayId), [id]);

      const modified = await call('ModifyVpnGatewayAttribute', {
        VpnGatewayId: id, Name: 'renamed-by-node', Description: 'node-desc', AutoPropagate: false,
      });
      assert.equal(modified.Name, 'renamed-by-node');
      assert.equal(modified.Description, 'node-desc');
      assert.equal(modified.AutoPropagate, false);
      const after = await call('DescribeVpnGateway', { VpnGatewayId: id });
      assert.equal(after.Name, 'renamed-by-node');
      assert.equal(after.Description, 'node-desc');
      assert.equal(after.AutoPropagate, false);

      const del = await call('DeleteVpnGateway', { VpnGatewayId: id });
      assert.ok(del.RequestId);
      await waitFor(async () => (await describeStatus(id)) === null, `${id} gone`);
      await expectCode(call('DescribeVpnGateway', { VpnGatewayId: id }), 'InvalidVpnGatewayInstanceId.NotFound');
    });

    test('customer gateway: create, describe, list, modify, delete', async () => {
      const ip = publicIp();
      const c = await call('CreateCustomerGateway', {
        IpAddress: ip, Name: 'node-cgw', Description: 'branch-office', Asn: '123.456', AuthKey: 'node-key-1',
      });
      assert.match(c.CustomerGatewayId, /^cgw-[a-z0-9]{21}$/);
      assert.equal(c.IpAddress, ip);
      assert.equal(c.Name, 'node-cgw');
      const id = c.CustomerGatewayId;

      const d = await call('DescribeCustomerGateway', { CustomerGatewayId: id });
      assert.equal(d.IpAddress, ip);
      assert.equal(d.Asn, 123 * 65536 + 456);
      assert.equal(d.AuthKey, 'node-key-1');
      assert.equal(d.Description, 'branch-office');

      const listed = await call('DescribeCustomerGateways', { CustomerGatewayId: id });
      assert.equal(listed.TotalCount, 1);
      assert.deepEqual(listed.CustomerGateways.CustomerGateway.map((x) => x.CustomerGatewayId), [id]);

      const m = await call('ModifyCustomerGatewayAttribute', {
        CustomerGatewayId: id, Name: 'node-cgw-2', Description: 'moved-office', AuthKey: 'node-key-2',
      });
      assert.equal(m.Name, 'node-cgw-2');
      assert.equal(m.Description, 'moved-office');
      const d2 = await call('DescribeCustomerGateway', { CustomerGatewayId: id });
      assert.equal(d2.Name, 'node-cgw-2');
      assert.equal(d2.AuthKey, 'node-key-2');

      await expectCode(call('CreateCustomerGateway', { IpAddress: ip }), 'InvalidIpAddress.AlreadyExist');
      await call('DeleteCustomerGateway', { CustomerGatewayId: id });
      await expectCode(call('DescribeCustomerGateway', { CustomerGatewayId: id }),
        'InvalidCustomerGatewayInstanceId.NotFound');
    });

    test('tags: tag, list, untag', async () => {
      const { VpnGatewayId: id } = await call('CreateVpnGateway', { VpcId: `vpc-${rand()}`, Bandwidth: 10 });
      await call('TagResources', {
        ResourceType: 'VpnGateWay', ResourceId: [id],
        Tag: [{ Key: 'env', Value: 'prod' }, { Key: 'owner', Value: 'node' }],
      });
      const listed = await call('ListTagResources', { ResourceType: 'VpnGateWay', ResourceId: [id] });
      const pairs = listed.TagResources.TagResource.map((t) => `${t.ResourceId}:${t.TagKey}=${t.TagValue}`).sort();
      assert.deepEqual(pairs, [`${id}:env=prod`, `${id}:owner=node`]);
      assert.equal(listed.NextToken, '');

      const d = await call('DescribeVpnGateway', { VpnGatewayId: id });
      const tags = Object.fromEntries(d.Tags.Tag.map((t) => [t.Key, t.Value]));
      assert.deepEqual(tags, { env: 'prod', owner: 'node' });

      const filtered = await call('DescribeVpnGateways', { Tag: [{ Key: 'owner', Value: 'node' }], VpnGatewayId: id });
      assert.equal(filtered.TotalCount, 1);

      await call('UnTagResources', { ResourceType: 'VpnGateWay', ResourceId: [id], TagKey: ['env'] });
      const after1 = await call('ListTagResources', { ResourceType: 'VpnGateWay', ResourceId: [id] });
      assert.deepEqual(after1.TagResources.TagResource.map((t) => t.TagKey), ['owner']);
      await call('UnTagResources', { ResourceType: 'VpnGateWay', ResourceId: [id], All: true });
      const after2 = await call('ListTagResources', { ResourceType: 'VpnGateWay', ResourceId: [id] });
      assert.deepEqual(after2.TagResources.TagResource, []);

      await expectCode(call('TagResources', {
        ResourceType: 'VpnGateWay', ResourceId: [`vpn-${'x'.repeat(21)}`], Tag: [{ Key: 'a', Value: 'b' }],
      }), 'InvalidResourceId.NotFound');
    });

    test('errors: NotFound, bad parameters, bad signature, unknown key', async () => {
      const unknown = `vpn-${'0'.repeat(21)}`;
      await expectCode(call('DescribeVpnGateway', { VpnGatewayId: unknown }), 'InvalidVpnGatewayInstanceId.NotFound');
      await expectCode(call('ModifyVpnGatewayAttribute', { VpnGatewayId: unknown, Name: 'abc' }),
        'InvalidVpnGatewayInstanceId.NotFound');
      await expectCode(call('DeleteVpnGateway', { VpnGatewayId: unknown }), 'InvalidVpnGatewayInstanceId.NotFound');
      await expectCode(call('DescribeCustomerGateway', { CustomerGatewayId: `cgw-${'0'.repeat(21)}` }),
        'InvalidCustomerGatewayInstanceId.NotFound');
      await expectCode(call('CreateVpnGateway', { VpcId: `vpc-${rand()}`, Bandwidth: 7 }), 'InvalidParameter');
      await expectCode(call('CreateVpnGateway', { Bandwidth: 10 }), 'MissingVpcId');
      await expectCode(
        client('wrong-secret').request('DescribeRegions', { RegionId: REGION }, opts), 'SignatureDoesNotMatch');
      await expectCode(
        client(SECRET, 'LTAI5tNodeUnknownKey').request('DescribeRegions', { RegionId: REGION }, opts),
        'InvalidAccessKeyId.NotFound');
    });

    test('DescribeRegions', async () => {
      const r = await call('DescribeRegions', {});
      const ids = r.Regions.Region.map((x) => x.RegionId);
      for (const want of ['cn-hangzhou', 'cn-shanghai', 'cn-beijing']) assert.ok(ids.includes(want), want);
    });
  });
}
