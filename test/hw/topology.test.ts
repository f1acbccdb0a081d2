// Topology schema errors, default topology, device placement checks.
import t from 'tap';
import { buildFabric, defaultTopology, parseTopology } from '../../src/hw/topology.js';
import { TopologySchema } from '../../src/hw/topology_schema.js';

t.test('schema errors name the bad key', async (t) => {
  t.throws(() => parseTopology({ rootComplexes: [{ ports: [{ bogus: 1 }] }] }), { message: /topology\.rootComplexes\[0\]\.ports\[0\]: Unrecognized key: "bogus"/ });
  t.throws(() => parseTopology({ rootComplexes: [{ ports: [{ acs: { ctl: ['XX'] } }] }] }), { message: /topology\.rootComplexes\[0\]\.ports\[0\]\.acs\.ctl\[0\]: Invalid option/ });
  t.throws(() => parseTopology({ rootComplexes: [{ ports: [{ link: { gen: 7, width: 16 } }] }] }), { message: /ports\[0\]\.link\.gen/ });
  t.throws(() => parseTopology({ rootComplexes: [{ ports: [{ link: { gen: 3, width: 3 } }] }] }), { message: /ports\[0\]\.link\.width/ });
  t.throws(() => parseTopology({ policy: 'yolo', rootComplexes: [{}] }), { message: /topology\.policy/ });
  t.throws(() => parseTopology({ rootComplexes: [{ ports: [{ switch: { ports: [] }, endpoint: { device: 'a' } }] }] }), { message: /give `switch` or `endpoint`, not both/ });
  t.throws(() => parseTopology({ rootComplexes: [] }), { message: /topology\.rootComplexes/ });
  t.throws(() => parseTopology({ rootComplexes: [{ id: 'intel' }] }), { message: /rootComplexes\[0\]\.id: expected a vendor:device id/ });
});

t.test('default topology: one root complex, one switch, every device below it', async (t) => {
  const spec = defaultTopology(['cam0', 'cc0', 'nic0']);
  t.equal(spec.policy, 'rfc-v1');
  const f = buildFabric(undefined, ['cam0', 'cc0', 'nic0'], 1);
  t.equal(f.tree.rcs.length, 1);
  t.equal(f.iommuEnabledFor('cam0'), false);
  for (const [a, b] of [['cam0', 'cc0'], ['cc0', 'nic0']]) {
    t.equal(f.mapType(a, b).map, 'bus-addr');
    t.equal(f.mapType(a, b).distance, 4);
  }
  t.same(f.deviceNames(), ['cam0', 'cc0', 'nic0']);
});

t.test('device placement is checked against the scenario', async (t) => {
  const spec = parseTopology({ rootComplexes: [{ ports: [{ endpoint: { device: 'gpu0' } }] }] });
  t.throws(() => buildFabric(spec, ['gpu0', 'nic0'], 1), { name: 'TopologyError', message: /device 'nic0' not placed in the topology/ });
  t.throws(() => buildFabric(spec, [], 1), { message: /rootComplexes\[0\]\.ports\[0\]\.endpoint\.device: 'gpu0' is not a device of this scenario/ });
  const twice = parseTopology({ rootComplexes: [{ ports: [{ endpoint: { device: 'a' } }, { endpoint: { device: 'a' } }] }] });
  t.throws(() => buildFabric(twice, ['a'], 1), { message: /'a' is placed twice/ });
  const clash = parseTopology({ rootComplexes: [{ ports: [{ slot: '01.0', endpoint: { device: 'a' } }, { slot: '01.0', endpoint: { device: 'b' } }] }] });
  t.throws(() => buildFabric(clash, ['a', 'b'], 1), { message: /0000:00:01\.0 is used twice/ });
});

t.test('bus numbers are assigned depth-first like a bus scan', async (t) => {
  const spec = TopologySchema.parse({
    rootComplexes: [
      { ports: [{ switch: { ports: [{ endpoint: { device: 'a' } }, { endpoint: { device: 'b' } }] } }, { endpoint: { device: 'c' } }] },
      { ports: [{ endpoint: { device: 'd' } }] },
    ],
  });
  const f = buildFabric(spec, ['a', 'b', 'c', 'd'], 1);
  t.same(['a', 'b', 'c', 'd'].map((n) => f.resolve(n)!.bdf), ['0000:03:00.0', '0000:04:00.0', '0000:05:00.0', '0000:07:00.0']);
  t.equal(f.tree.rcs[1].bus, 6);
  const rp = f.tree.byBdf.get('0000:00:01.0')!;
  t.same([rp.secondary, rp.subordinate], [1, 4]);
});

t.test('disable_acs_redir on a port without ACS warns like the kernel', async (t) => {
  const spec = parseTopology({ disableAcsRedir: ['0000:00:01.0', '0000:09:00.0'], rootComplexes: [{ ports: [{ acs: false, endpoint: { device: 'a' } }] }] });
  const f = buildFabric(spec, ['a'], 1);
  t.match(f.tree.warnings.join('\n'), /0000:00:01\.0: cannot disable ACS redirect for this hardware as it does not have ACS capabilities/);
  t.match(f.tree.warnings.join('\n'), /0000:09:00\.0, which is not in the topology/);
});
