/** How an EIP reaches the NIC: `NAT` keeps it off the NIC (the VPC translates), `direct` routes the public IP to the NIC. */
export type PublicIpMode = 'NAT' | 'direct';

/** One private IPv4 address assigned to a NIC, with its EIP if one is bound. */
export interface PrivateAddress {
  /** Dotted quad, validated. */
  ip: string;
  /** Metadata path of this address's directory, for messages. */
  path: string;
  publicIp?: string;
  publicMode?: PublicIpMode;
}

/** One elastic network interface as the metadata describes it, validated. */
export interface NicModel {
  /** MAC exactly as listed in the metadata (used to build URLs). */
  mac: string;
  /** Lower-case MAC, for comparing with the OS. */
  macLower: string;
  /** True for the NIC whose MAC equals the top-level `mac` (eth0). */
  isPrimaryNic: boolean;
  /** Position in the model: 0 for the primary NIC, then the others in listing order. */
  index: number;
  vpcId?: string;
  subnetId?: string;
  /** Subnet of every address on this NIC. */
  prefixLength: number;
  netmask: string;
  /** Network address, e.g. 10.0.0.0. */
  network: string;
  /** Subnet in CIDR notation, e.g. 10.0.0.0/24. */
  cidr: string;
  gateway: string;
  /** The NIC's primary private IP (first) then its secondary IPs in listing order. */
  addresses: PrivateAddress[];
}

/** The validated instance: everything the renderers need, nothing they must re-check. */
export interface InstanceModel {
  instanceId?: string;
  region?: string;
  /** MAC of eth0, exactly as listed. */
  primaryMac: string;
  /** NICs in metadata listing order; the primary NIC is always first. */
  nics: NicModel[];
}
