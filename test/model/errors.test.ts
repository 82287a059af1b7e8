import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/errors.js';
import type { MetaTree } from '../../src/metadata/tree.js';
import { buildModel } from '../../src/model/index.js';
import { L1, L2, M1, M2, N1, N2, del, ipDir, manualTree, positions, rename, set, setNicGateway } from './fixture.js';

const A2 = `${L1}10.0.0.2/`;
const A3 = `${L1}10.0.0.3/`;
const A8 = `${L2}10.0.0.8/`;
const MACS = 'network/interfaces/macs/';
const INJ = '10.0.0.3\nIPADDR9=1.2.3.4';
const FULLWIDTH = '１0.0.0.3'; // U+FF11 FULLWIDTH DIGIT ONE
const ID_CHARS = "contains characters that are not allowed (allowed: letters, digits, '.', '_', '-')";

function errorOf(tree: MetaTree): ValidationError {
  try {
    buildModel(tree);
  } catch (error) {
    if (error instanceof ValidationError) return error;
    throw error;
  }
  throw new Error('buildModel returned instead of throwing');
}

type Case = [string, (t: MetaTree) => void, string];

const cases: Case[] = [
  // Shape of the tree.
  ['mac missing', (t) => del(t, 'mac'), 'mac: is required but missing'],
  ['mac is a directory', (t) => set(t, 'mac', {}), 'mac: expected a value, found a directory'],
  ['placement is a value', (t) => set(t, 'placement', 'x'), 'placement/: expected a directory, found a value'],
  ['no network/ at all', (t) => del(t, 'network'), `${MACS}: is required but missing`],
  [
    'network/interfaces is a value',
    (t) => set(t, 'network/interfaces', 'eth0'),
    'network/interfaces/: expected a directory, found a value',
  ],
  ['no NICs', (t) => set(t, MACS, {}), `${MACS}: lists no interfaces`],
  ['NIC entry is a value', (t) => set(t, `${MACS}${M2}`, 'x'), `${N2}: expected a directory, found a value`],
  [
    'primary-local-ipv4 missing',
    (t) => del(t, `${N1}primary-local-ipv4`),
    `${N1}primary-local-ipv4: is required but missing`,
  ],
  ['local-ipv4s missing', (t) => del(t, `${N1}local-ipv4s`), `${L1}: is required but missing`],
  ['local-ipv4s empty', (t) => set(t, `${N1}local-ipv4s`, {}), `${L1}: lists no addresses`],
  ['IP entry is a value', (t) => set(t, `${L1}10.0.0.3`, '10.0.0.3'), `${A3}: expected a directory, found a value`],
  ['gateway missing', (t) => del(t, `${A3}gateway`), `${A3}gateway: is required but missing`],
  ['subnet-mask missing', (t) => del(t, `${A2}subnet-mask`), `${A2}subnet-mask: is required but missing`],
  ['gateway is a directory', (t) => set(t, `${A3}gateway`, {}), `${A3}gateway: expected a value, found a directory`],

  // Top level.
  ['mac with dashes', (t) => set(t, 'mac', '52-54-00-8A-7A-64'), 'mac: "52-54-00-8A-7A-64" is not a valid MAC address'],
  [
    'mac with a newline injection',
    (t) => set(t, 'mac', `${M1}\nreboot`),
    'mac: "52:54:00:8A:7A:64\\nreboot" is not a valid MAC address',
  ],
  ['mac not listed', (t) => set(t, 'mac', '52:54:00:00:00:01'), `mac: "52:54:00:00:00:01" is not listed under ${MACS}`],
  ['instance-id with ;', (t) => set(t, 'instance-id', 'ins-1;reboot'), `instance-id: "ins-1;reboot" ${ID_CHARS}`],
  ['instance-id with $( )', (t) => set(t, 'instance-id', '$(reboot)'), `instance-id: "$(reboot)" ${ID_CHARS}`],
  ['instance-id empty', (t) => set(t, 'instance-id', ''), 'instance-id: "" is empty'],
  [
    'instance-id starting with -',
    (t) => set(t, 'instance-id', '-rf'),
    'instance-id: "-rf" must start with a letter or digit',
  ],
  [
    'instance-id too long',
    (t) => set(t, 'instance-id', 'i'.repeat(129)),
    `instance-id: "${'i'.repeat(64)}"... (129 characters) is longer than 128 characters`,
  ],
  [
    'region with a space',
    (t) => set(t, 'placement/region', 'ap guangzhou'),
    `placement/region: "ap guangzhou" ${ID_CHARS}`,
  ],
  [
    'region with backticks',
    (t) => set(t, 'placement/region', '`reboot`'),
    `placement/region: "\`reboot\`" ${ID_CHARS}`,
  ],
  [
    'local-ipv4 with a trailing space',
    (t) => set(t, 'local-ipv4', '10.0.0.2 '),
    'local-ipv4: "10.0.0.2 " is not a valid IPv4 address',
  ],
  [
    'local-ipv4 not the primary IP',
    (t) => set(t, 'local-ipv4', '10.0.0.3'),
    `local-ipv4: "10.0.0.3" differs from the primary NIC's primary-local-ipv4 (10.0.0.2)`,
  ],

  // NIC directory names and NIC values.
  [
    'MAC key with a newline injection',
    (t) => rename(t, `${MACS}${M2}`, `${M2}\nIPADDR9=1.2.3.4`),
    `${MACS}: "20:90:6F:F7:93:2E\\nIPADDR9=1.2.3.4" is not a valid MAC address`,
  ],
  [
    'MAC key with $( )',
    (t) => rename(t, `${MACS}${M2}`, '$(reboot)'),
    `${MACS}$(reboot): "$(reboot)" is not a valid MAC address`,
  ],
  [
    'MAC key with a space',
    (t) => rename(t, `${MACS}${M2}`, `${M2} `),
    `${MACS}: "20:90:6F:F7:93:2E " is not a valid MAC address`,
  ],
  [
    'MAC listed twice with another case',
    (t) => set(t, `${MACS}52:54:00:8a:7a:64`, {}),
    `${MACS}52:54:00:8a:7a:64: "52:54:00:8a:7a:64" is listed twice (also as ${M1})`,
  ],
  ['vpc-id with ;', (t) => set(t, `${N1}vpc-id`, 'vpc-1;reboot'), `${N1}vpc-id: "vpc-1;reboot" ${ID_CHARS}`],
  ["vpc-id with '", (t) => set(t, `${N2}vpc-id`, "vpc-1'"), `${N2}vpc-id: "vpc-1'" ${ID_CHARS}`],
  ['vpc-id with "', (t) => set(t, `${N1}vpc-id`, 'vpc-"1'), `${N1}vpc-id: "vpc-\\"1" ${ID_CHARS}`],
  ['subnet-id with a tab', (t) => set(t, `${N1}subnet-id`, 'subnet-1\t'), `${N1}subnet-id: "subnet-1\\t" ${ID_CHARS}`],
  ['subnet-id with |', (t) => set(t, `${N2}subnet-id`, 'subnet|sh'), `${N2}subnet-id: "subnet|sh" ${ID_CHARS}`],
  [
    'primary-local-ipv4 not listed',
    (t) => set(t, `${N1}primary-local-ipv4`, '10.0.0.9'),
    `${N1}primary-local-ipv4: "10.0.0.9" is not listed in local-ipv4s/`,
  ],
  [
    'primary-local-ipv4 with a leading zero',
    (t) => set(t, `${N1}primary-local-ipv4`, '010.0.0.2'),
    `${N1}primary-local-ipv4: "010.0.0.2" is not a valid IPv4 address`,
  ],
  [
    'primary-local-ipv4 injection',
    (t) => set(t, `${N2}primary-local-ipv4`, '10.0.0.7\nIPADDR9=1.2.3.4'),
    `${N2}primary-local-ipv4: "10.0.0.7\\nIPADDR9=1.2.3.4" is not a valid IPv4 address`,
  ],

  // IP directory names.
  [
    'IP dir with a newline injection',
    (t) => rename(t, `${L1}10.0.0.3`, INJ),
    `${L1}: "10.0.0.3\\nIPADDR9=1.2.3.4" is not a valid IPv4 address`,
  ],
  [
    'IP dir with a leading zero',
    (t) => rename(t, `${L1}10.0.0.3`, '010.0.0.3'),
    `${L1}010.0.0.3: "010.0.0.3" is not a valid IPv4 address`,
  ],
  [
    'IP dir with a trailing dot',
    (t) => rename(t, `${L1}10.0.0.3`, '10.0.0.3.'),
    `${L1}10.0.0.3.: "10.0.0.3." is not a valid IPv4 address`,
  ],
  [
    'IP dir with a fullwidth digit',
    (t) => rename(t, `${L1}10.0.0.3`, FULLWIDTH),
    `${L1}: "${FULLWIDTH}" is not a valid IPv4 address`,
  ],
  [
    'IP dir with ;',
    (t) => rename(t, `${L2}10.0.0.8`, '10.0.0.8;reboot'),
    `${L2}10.0.0.8;reboot: "10.0.0.8;reboot" is not a valid IPv4 address`,
  ],
  [
    'IP dir with an octet over 255',
    (t) => rename(t, `${L2}10.0.0.8`, '10.0.0.256'),
    `${L2}10.0.0.256: "10.0.0.256" is not a valid IPv4 address`,
  ],

  // Addresses and subnets.
  [
    'same private IP on two NICs',
    (t) => rename(t, `${L2}10.0.0.8`, '10.0.0.3'),
    `${L2}10.0.0.3: "10.0.0.3" is already assigned at ${L1}10.0.0.3`,
  ],
  [
    'gateway with $( )',
    (t) => set(t, `${A3}gateway`, '$(reboot)'),
    `${A3}gateway: "$(reboot)" is not a valid IPv4 address`,
  ],
  [
    'gateway with &',
    (t) => set(t, `${A2}gateway`, '10.0.0.1&'),
    `${A2}gateway: "10.0.0.1&" is not a valid IPv4 address`,
  ],
  [
    'mask not contiguous',
    (t) => set(t, `${A2}subnet-mask`, '255.0.255.0'),
    `${A2}subnet-mask: "255.0.255.0" is not a contiguous netmask`,
  ],
  [
    'mask /32',
    (t) => set(t, `${A2}subnet-mask`, '255.255.255.255'),
    `${A2}subnet-mask: "255.255.255.255" is not a usable subnet mask for a NIC`,
  ],
  [
    'mask /31',
    (t) => set(t, `${A2}subnet-mask`, '255.255.255.254'),
    `${A2}subnet-mask: "255.255.255.254" is not a usable subnet mask for a NIC`,
  ],
  [
    'mask /0',
    (t) => set(t, `${A2}subnet-mask`, '0.0.0.0'),
    `${A2}subnet-mask: "0.0.0.0" is not a usable subnet mask for a NIC`,
  ],
  [
    'mask with a newline',
    (t) => set(t, `${A3}subnet-mask`, '255.255.255.0\n'),
    `${A3}subnet-mask: "255.255.255.0\\n" is not a valid IPv4 address`,
  ],
  [
    'primary gateway outside its subnet',
    (t) => set(t, `${A2}gateway`, '10.1.0.1'),
    `${A2}gateway: "10.1.0.1" is outside subnet 10.0.0.0/24`,
  ],
  [
    'secondary IP outside the NIC subnet',
    (t) => rename(t, `${L1}10.0.0.3`, '10.0.1.5'),
    `${L1}10.0.1.5: "10.0.1.5" is outside subnet 10.0.0.0/24 (gateway 10.0.0.1, mask 255.255.255.0)`,
  ],
  [
    'secondary mask differs',
    (t) => set(t, `${A3}subnet-mask`, '255.255.0.0'),
    `${A3}subnet-mask: "255.255.0.0" differs from the NIC's primary IP (255.255.255.0)`,
  ],
  [
    'secondary gateway differs',
    (t) => set(t, `${A3}gateway`, '10.0.0.254'),
    `${A3}gateway: "10.0.0.254" differs from the NIC's primary IP (10.0.0.1)`,
  ],
  [
    'network address as host IP',
    (t) => rename(t, `${L1}10.0.0.3`, '10.0.0.0'),
    `${L1}10.0.0.0: "10.0.0.0" is the network address of 10.0.0.0/24`,
  ],
  [
    'broadcast address as host IP',
    (t) => rename(t, `${L2}10.0.0.8`, '10.0.0.255'),
    `${L2}10.0.0.255: "10.0.0.255" is the broadcast address of 10.0.0.0/24`,
  ],
  [
    'network address as gateway',
    (t) => set(t, `${A2}gateway`, '10.0.0.0'),
    `${A2}gateway: "10.0.0.0" is the network address of 10.0.0.0/24`,
  ],
  [
    'broadcast address as gateway',
    (t) => set(t, `${A2}gateway`, '10.0.0.255'),
    `${A2}gateway: "10.0.0.255" is the broadcast address of 10.0.0.0/24`,
  ],
  [
    'gateway is a private IP of its own NIC',
    (t) => setNicGateway(t, N1, '10.0.0.3'),
    `${A2}gateway: "10.0.0.3" is also assigned as a private IP at ${L1}10.0.0.3`,
  ],
  [
    'gateway is a private IP of another NIC',
    (t) => setNicGateway(t, N2, '10.0.0.2'),
    `${L2}10.0.0.7/gateway: "10.0.0.2" is also assigned as a private IP at ${L1}10.0.0.2`,
  ],

  // EIPs.
  [
    'public-ipv4 with ;',
    (t) => set(t, `${A2}public-ipv4`, '203.0.113.10;reboot'),
    `${A2}public-ipv4: "203.0.113.10;reboot" is not a valid IPv4 address`,
  ],
  [
    'public-ipv4 with a quote',
    (t) => set(t, `${A3}public-ipv4`, "203.0.113.11'"),
    `${A3}public-ipv4: "203.0.113.11'" is not a valid IPv4 address`,
  ],
  [
    'public-ipv4 loopback',
    (t) => set(t, `${A2}public-ipv4`, '127.0.0.1'),
    `${A2}public-ipv4: "127.0.0.1" is not a usable public IPv4 address`,
  ],
  [
    'public-ipv4 unspecified',
    (t) => set(t, `${A2}public-ipv4`, '0.0.0.0'),
    `${A2}public-ipv4: "0.0.0.0" is not a usable public IPv4 address`,
  ],
  [
    'public-ipv4 broadcast',
    (t) => set(t, `${A2}public-ipv4`, '255.255.255.255'),
    `${A2}public-ipv4: "255.255.255.255" is not a usable public IPv4 address`,
  ],
  [
    'public-ipv4 multicast',
    (t) => set(t, `${A2}public-ipv4`, '224.0.0.1'),
    `${A2}public-ipv4: "224.0.0.1" is not a usable public IPv4 address`,
  ],
  [
    'public-ipv4 link-local',
    (t) => set(t, `${A2}public-ipv4`, '169.254.0.23'),
    `${A2}public-ipv4: "169.254.0.23" is not a usable public IPv4 address`,
  ],
  [
    'same EIP bound twice',
    (t) => set(t, `${A8}public-ipv4`, '203.0.113.10'),
    `${A8}public-ipv4: "203.0.113.10" is already bound at ${A2}public-ipv4`,
  ],
  [
    'EIP equal to a private IP',
    (t) => set(t, `${A8}public-ipv4`, '10.0.0.3'),
    `${A8}public-ipv4: "10.0.0.3" is also assigned as a private IP at ${L1}10.0.0.3`,
  ],
  [
    'mode in lower case',
    (t) => set(t, `${A2}public-ipv4-mode`, 'nat'),
    `${A2}public-ipv4-mode: "nat" is not a known public-ipv4-mode (expected NAT or direct)`,
  ],
  [
    'mode with a newline',
    (t) => set(t, `${A3}public-ipv4-mode`, 'NAT\nreboot'),
    `${A3}public-ipv4-mode: "NAT\\nreboot" is not a known public-ipv4-mode (expected NAT or direct)`,
  ],
  [
    'mode without EIP still checked',
    (t) => {
      del(t, `${A8}public-ipv4`);
      set(t, `${A8}public-ipv4-mode`, 'direct; reboot');
    },
    `${A8}public-ipv4-mode: "direct; reboot" is not a known public-ipv4-mode (expected NAT or direct)`,
  ],
];

describe('buildModel: bad inputs', () => {
  it('has a case for every rule', () => {
    expect(cases.length).toBeGreaterThanOrEqual(35);
  });

  it.each(cases)('%s', (_name, mutate, message) => {
    const tree = manualTree();
    mutate(tree);
    const error = errorOf(tree);
    expect(error.message).toBe(message);
    expect(error.domain).toBe('validation');
  });
});

describe('buildModel: which error comes first', () => {
  it('reports a top-level error before a NIC error', () => {
    const tree = manualTree();
    set(tree, `${A2}gateway`, 'bad');
    set(tree, 'placement/region', 'bad region');
    expect(errorOf(tree).path).toBe('placement/region');
  });

  it('reports NICs in listing order, not primary-first', () => {
    const tree = manualTree();
    set(tree, 'mac', M2);
    set(tree, 'local-ipv4', '10.0.0.7');
    set(tree, `${A3}gateway`, 'bad');
    set(tree, `${A8}gateway`, 'bad');
    expect(errorOf(tree).path).toBe(`${A3}gateway`);
  });

  it("checks a NIC's primary address first because it defines the subnet", () => {
    const tree = manualTree();
    set(tree, `${N1}primary-local-ipv4`, '10.0.0.3');
    set(tree, 'local-ipv4', '10.0.0.3');
    set(tree, `${A2}gateway`, '10.9.9.9'); // listed first, but a secondary now: compared with the primary's
    expect(errorOf(tree).message).toBe(`${A2}gateway: "10.9.9.9" differs from the NIC's primary IP (10.0.0.1)`);
    set(tree, `${A2}subnet-mask`, '255.255.0.0'); // the secondary, listed first, now has a problem of its own...
    set(tree, `${A3}gateway`, '10.9.9.9'); // ...but the primary's, listed second, is reported
    expect(errorOf(tree).message).toBe(`${A3}gateway: "10.9.9.9" is outside subnet 10.0.0.0/24`);
  });
});

// C0 and C1 controls, DEL and the Unicode line/paragraph separators: what can split or rewrite a log line.
function breaksLine(char: string): boolean {
  const cp = char.codePointAt(0) ?? 0;
  return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp === 0x2028 || cp === 0x2029;
}

// Each string holds at least one character no field allows (whitespace, control, shell syntax, non-ASCII).
const DANGEROUS = [
  INJ,
  '$(reboot)',
  '`reboot`',
  "x'; reboot; '",
  '"; reboot; "',
  '10.0.0.3;reboot',
  '10.0.0.3|sh',
  '10.0.0.3&',
  '10.0.0.3 ',
  '\t10.0.0.3',
  FULLWIDTH,
  '10.0.0.3\r',
  '${IFS}',
  'a\u0000b',
  '',
  '10.0.0.3\u00a0',
  `${M1}\n`,
  'vpc-1 #',
];

describe('buildModel: every value position refuses every dangerous string', () => {
  const base = manualTree();
  const { leaves, dirs } = positions(base);
  // placement/zone is not used by the model, so nothing to refuse there.
  const valuePositions = leaves.filter((p) => p.join('/') !== 'placement/zone');
  const NAME_PARENTS = new Set([MACS, ...[M1, M2].map((m) => `${MACS}${m}/local-ipv4s/`)]);
  const namePositions = dirs.filter((p) => NAME_PARENTS.has(`${p.slice(0, -1).join('/')}/`));

  it('enumerates the positions it claims to', () => {
    // 4 top-level, 3 per NIC, 4 per address minus the one absent mode; 2 MAC names, 4 IP names.
    expect(valuePositions.length).toBe(4 + 2 * 3 + 4 * 4 - 1);
    expect(namePositions.length).toBe(6);
  });

  it('throws a one-line ValidationError every time', () => {
    let thrown = 0;
    const mutations: ((t: MetaTree, s: string) => void)[] = [
      ...valuePositions.map((p) => (t: MetaTree, s: string) => set(t, p, s)),
      ...namePositions.map((p) => (t: MetaTree, s: string) => rename(t, p, s)),
    ];
    for (const mutate of mutations) {
      for (const dangerous of DANGEROUS) {
        const tree = manualTree();
        mutate(tree, dangerous);
        const error = errorOf(tree);
        // One line: neither the raw path nor the JSON-escaped value may carry a line break or control character.
        expect([...error.message].filter(breaksLine)).toEqual([]);
        expect(error.path).toMatch(/^[\x21-\x7e]+$/);
        thrown += 1;
      }
    }
    expect(thrown).toBe((valuePositions.length + namePositions.length) * DANGEROUS.length);
    expect(thrown).toBe(31 * 18);
  });

  it('leaves the base tree valid, so every throw above comes from the dangerous string', () => {
    expect(() => buildModel(manualTree())).not.toThrow();
    expect(ipDir()).toEqual({ gateway: '10.0.0.1', 'subnet-mask': '255.255.255.0' });
  });
});
