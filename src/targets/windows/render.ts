import type { InstanceModel, NicModel } from '../../model/types.js';
import { compileTemplate } from '../../render/handlebars.js';
import type { RenderedFile } from '../../render/types.js';
import type { WindowsFlavor } from './constants.js';
import { ROUTE_METRIC_STEP, SCRIPT_PATH, UTF8_BOM, WINDOWS_EXIT } from './constants.js';
import * as guard from './guard.js';
import powershellData from '../../../templates/windows/eip-agent-data.ps1.hbs';
import powershellLogic from '../../../templates/windows/eip-agent-logic.ps1';

/** Inputs of the Windows renderer besides the model. */
export interface WindowsRenderOptions {
  flavor: WindowsFlavor;
  /** The endpoint the script checks after a change (the one the agent reads). */
  metadataUrl: string;
  /** DNS servers to set on every NIC; empty or absent keeps the servers each adapter already has. */
  dnsServers?: readonly string[];
}

/** One address the script puts on a NIC. */
export interface WindowsAddress {
  ip: string;
  prefixLength: number;
}

/** What the script must make of one NIC, found at run time by its MAC. */
export interface WindowsNic {
  index: number;
  /** MAC as the metadata lists it (52:54:00:...). */
  mac: string;
  /** The 12 hex digits the script compares with Get-NetAdapter's 52-54-00-... spelling. */
  macKey: string;
  role: 'primary' | 'secondary';
  primary: string;
  prefixLength: number;
  gateway: string;
  /** Secondary private IPs (NIC subnet), then `direct` EIPs (/32); all added with SkipAsSource. */
  secondary: WindowsAddress[];
  /** Metric of this NIC's default route: 0 on the primary NIC, higher on each secondary NIC. */
  routeMetric: number;
  /** Explicit DNS servers; empty keeps the adapter's own. */
  dns: string[];
}

/** The Windows desired state: the script decides and changes at run time, so this is what it was rendered from. */
export interface WindowsDesiredRuntime {
  flavor: WindowsFlavor;
  /** The script's path relative to the agent's directory. */
  script: string;
  metadataUrl: string;
  nics: WindowsNic[];
}

/** Everything the Windows renderer produces. */
export interface WindowsDesiredState {
  files: RenderedFile[];
  runtime: WindowsDesiredRuntime;
}

interface ScriptData {
  instanceId: string;
  metadataUrl: string;
  flavor: WindowsFlavor;
  /** Whether the changes are made with netsh (the flavor, as the data block's comment needs it). */
  netsh: boolean;
  exit: typeof WINDOWS_EXIT;
  nics: WindowsNic[];
}

const dataBlock = compileTemplate<ScriptData>(powershellData);
/** Either flavor: the rendered data block, then the fixed logic, a plain script that no value reaches. */
const script = (data: ScriptData): string => dataBlock(data) + powershellLogic;

const MASK_MAX = 32;
const METRIC_MAX = 9999;
const FILE_MODE = 0o644;

function windowsNic(nic: NicModel, dns: string[]): WindowsNic {
  // Named by position: the MAC itself is one of the values being checked.
  const where = `NIC ${nic.index}`;
  const [primary, ...secondaries] = nic.addresses;
  if (primary === undefined) throw new Error(`render: windows: ${where} has no address`);
  const prefixLength = guard.int(`${where} prefix length`, nic.prefixLength, MASK_MAX);
  const secondary: WindowsAddress[] = secondaries.map((a) => ({
    ip: guard.ipv4(`${where} address`, a.ip),
    prefixLength,
  }));
  // A `direct` EIP is routed to the NIC, so it must be on the NIC, as on Linux: a /32 that is never a source.
  for (const a of nic.addresses) {
    if (a.publicMode === 'direct' && a.publicIp !== undefined)
      secondary.push({ ip: guard.ipv4(`${where} EIP`, a.publicIp), prefixLength: 32 });
  }
  return {
    index: nic.index,
    mac: guard.mac(`${where} MAC`, nic.mac),
    macKey: guard.macKey(nic.mac),
    role: nic.isPrimaryNic ? 'primary' : 'secondary',
    primary: guard.ipv4(`${where} primary address`, primary.ip),
    prefixLength,
    gateway: guard.ipv4(`${where} gateway`, nic.gateway),
    secondary,
    routeMetric: guard.int(`${where} route metric`, nic.isPrimaryNic ? 0 : ROUTE_METRIC_STEP * nic.index, METRIC_MAX),
    dns,
  };
}

/** Windows wants CRLF. */
function crlf(text: string): string {
  return text.replace(/\r?\n/g, '\r\n');
}

/**
 * Renders the Windows script for one flavor: a data block of validated values (the flavor among them), followed by
 * the fixed logic that resolves each NIC's MAC to an ifIndex at run time and makes each change with the flavor's
 * tool (the NetTCPIP cmdlets or netsh). Pure.
 */
export function renderWindows(model: InstanceModel, options: WindowsRenderOptions): WindowsDesiredState {
  const dns = (options.dnsServers ?? []).map((s) => guard.ipv4('DNS server', s));
  const nics = model.nics.map((nic) => windowsNic(nic, dns));
  const metadataUrl = guard.metadataUrl(options.metadataUrl);
  const data: ScriptData = {
    instanceId: guard.id('instance id', model.instanceId),
    metadataUrl,
    flavor: options.flavor,
    netsh: options.flavor === 'netsh',
    exit: WINDOWS_EXIT,
    nics,
  };
  guard.assertSafeData('windows script data', data);
  const path = SCRIPT_PATH[options.flavor];
  const content = UTF8_BOM + crlf(script(data));
  guard.assertAsciiScript(path, content);
  return {
    files: [{ path, mode: FILE_MODE, content }],
    runtime: { flavor: options.flavor, script: path, metadataUrl, nics },
  };
}
