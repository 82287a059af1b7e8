// Prometheus text exposition (format 0.0.4) of what the agent manages: NIC traffic, whether each
// address is on its NIC, when it last applied, and its counters.
import { underRoot } from '../plan/root.js';
import type { AgentState } from '../plan/record.js';
import type { Host } from '../host/host.js';
import type { InstanceModel } from '../model/types.js';
import { getTarget, type TargetName } from '../targets/index.js';
import type { LiveNic, NicCounters } from '../targets/target.js';

/** Everything the metrics are computed from; formatMetrics is pure over it. */
export interface MetricsInput {
  /** The last model read (after ignoreNics); undefined before the first successful read. */
  model: InstanceModel | undefined;
  state: AgentState;
  /** The model's NICs as the live system shows them; a NIC without counters is left out of the traffic metrics. */
  nics: readonly LiveNic[];
}

type Labels = Record<string, string>;

/** One metric family: name, HELP, TYPE and its samples. */
interface Family {
  name: string;
  help: string;
  type: 'counter' | 'gauge';
  samples: { labels: Labels; value: string }[];
}

/** Label values escape backslash, double quote and newline (exposition format 0.0.4). */
export function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function escapeHelp(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function sampleLine(name: string, labels: Labels, value: string): string {
  const pairs = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`);
  return `${name}${pairs.length > 0 ? `{${pairs.join(',')}}` : ''} ${value}`;
}

function seconds(iso: string | undefined): string | undefined {
  if (iso === undefined) return undefined;
  const ms = Date.parse(iso);
  return Number.isNaN(ms) ? undefined : String(ms / 1000);
}

/** A single unlabelled sample, or none when the value is unknown (an absent series, not a misleading 0). */
function single(value: string | undefined): { labels: Labels; value: string }[] {
  return value === undefined ? [] : [{ labels: {}, value }];
}

/** The metrics text: HELP and TYPE for every family, samples sorted as the model lists NICs and addresses. */
export function formatMetrics(input: MetricsInput): string {
  const { model, state } = input;
  const liveByMac = new Map(input.nics.map((l) => [l.mac, l]));
  const nics = (model?.nics ?? []).map((nic) => ({ nic, link: liveByMac.get(nic.macLower) }));

  const traffic = (key: keyof NicCounters) =>
    nics.flatMap(({ nic, link }) =>
      link?.counters === undefined
        ? []
        : [{ labels: { interface: link.ifname, mac: nic.macLower }, value: link.counters[key] }],
    );

  const addresses = nics.flatMap(({ nic, link }) => {
    const has = (ip: string) => (link?.addresses.some((a) => a.ip === ip) ? '1' : '0');
    const base = { interface: link?.ifname ?? '', mac: nic.macLower };
    return nic.addresses.flatMap((a) => {
      const rows = [
        {
          labels: {
            ...base,
            address: a.ip,
            kind: 'private',
            eip: a.publicIp ?? '',
            eip_mode: a.publicIp === undefined ? '' : (a.publicMode ?? 'NAT'),
          },
          value: has(a.ip),
        },
      ];
      // A direct EIP is configured on the NIC itself (as a /32); a NAT one never is.
      if (a.publicIp !== undefined && a.publicMode === 'direct')
        rows.push({
          labels: { ...base, address: a.publicIp, kind: 'direct-eip', eip: a.publicIp, eip_mode: 'direct' },
          value: has(a.publicIp),
        });
      return rows;
    });
  });

  const last = state.lastApply;
  const families: Family[] = [
    {
      name: 'eip_agent_nic_receive_bytes_total',
      type: 'counter',
      help: 'Bytes received by a NIC the agent manages (/sys/class/net/<interface>/statistics/rx_bytes).',
      samples: traffic('rxBytes'),
    },
    {
      name: 'eip_agent_nic_transmit_bytes_total',
      type: 'counter',
      help: 'Bytes sent by a NIC the agent manages (tx_bytes).',
      samples: traffic('txBytes'),
    },
    {
      name: 'eip_agent_nic_receive_packets_total',
      type: 'counter',
      help: 'Packets received by a NIC the agent manages (rx_packets).',
      samples: traffic('rxPackets'),
    },
    {
      name: 'eip_agent_nic_transmit_packets_total',
      type: 'counter',
      help: 'Packets sent by a NIC the agent manages (tx_packets).',
      samples: traffic('txPackets'),
    },
    {
      name: 'eip_agent_address_configured',
      type: 'gauge',
      help: 'Whether an address the metadata assigns is on its NIC (1) or not (0); kind is private or direct-eip.',
      samples: addresses,
    },
    {
      name: 'eip_agent_last_apply_timestamp_seconds',
      type: 'gauge',
      help: 'When the agent last applied the metadata (successfully or not), Unix time.',
      samples: single(seconds(last?.at)),
    },
    {
      name: 'eip_agent_last_apply_success',
      type: 'gauge',
      help: 'Whether the last apply was verified (1) or failed (0).',
      samples: single(last === undefined ? undefined : last.ok ? '1' : '0'),
    },
    {
      name: 'eip_agent_last_successful_apply_timestamp_seconds',
      type: 'gauge',
      help: 'When the agent last applied the metadata and verified the result, Unix time.',
      samples: single(seconds(state.lastSuccessAt ?? (last?.ok ? last.at : undefined))),
    },
    {
      name: 'eip_agent_last_error_timestamp_seconds',
      type: 'gauge',
      help: 'When the agent last failed (metadata, apply or verification), Unix time.',
      samples: single(seconds(state.lastError?.at)),
    },
    {
      name: 'eip_agent_applies_total',
      type: 'counter',
      help: 'Applies that changed files or the runtime and were verified.',
      samples: single(String(state.counters.applies)),
    },
    {
      name: 'eip_agent_verify_failures_total',
      type: 'counter',
      help: 'Applies whose verification failed.',
      samples: single(String(state.counters.verifyFailures)),
    },
    {
      name: 'eip_agent_rollbacks_total',
      type: 'counter',
      help: 'Applies rolled back after a failed verification.',
      samples: single(String(state.counters.rollbacks)),
    },
    {
      name: 'eip_agent_metadata_errors_total',
      type: 'counter',
      help: 'Metadata reads that failed or returned invalid metadata.',
      samples: single(String(state.counters.metadataErrors)),
    },
    {
      name: 'eip_agent_failed_model_attempts',
      type: 'gauge',
      help: 'Applies in a row of the current metadata that failed verification and were rolled back (absent: none).',
      samples: single(state.failedModelHash === undefined ? undefined : String(state.failedAttempts ?? 1)),
    },
    {
      name: 'eip_agent_failed_model_retry_timestamp_seconds',
      type: 'gauge',
      help: 'When a model that failed verification is tried again, Unix time (absent: none waiting).',
      samples: single(state.failedModelHash === undefined ? undefined : seconds(state.retryAfter)),
    },
  ];
  const lines: string[] = [];
  for (const f of families) {
    lines.push(`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.type}`);
    for (const s of f.samples) lines.push(sampleLine(f.name, s.labels, s.value));
  }
  return `${lines.join('\n')}\n`;
}

/** Reads what formatMetrics needs: the model's NICs as the target sees them live. */
export async function collectMetrics(
  host: Host,
  target: TargetName,
  model: InstanceModel | undefined,
  state: AgentState,
): Promise<MetricsInput> {
  const macs = model?.nics.map((n) => n.macLower) ?? [];
  return { model, state, nics: await (await getTarget(target)).liveNics(host, macs) };
}

/** Writes the metrics atomically where node_exporter's textfile collector reads them (under --root), world-readable. */
export async function writeMetricsTextfile(host: Host, root: string, path: string, text: string): Promise<void> {
  await host.fs.writeAtomic(underRoot(root, path), text, 0o644);
}
