/**
 * The raw metadata tree, as fetched over HTTP or read from a JSON file: an object is a
 * directory (its keys in listing order, without the trailing `/`), a string is a leaf.
 */
export interface MetaTree {
  [name: string]: MetaTree | string;
}

/** Where a raw tree comes from: the HTTP endpoint or a JSON file. */
export interface MetadataSource {
  /** Human name for messages, e.g. the URL or the file path. */
  readonly describe: string;
  /** Reads the parts of the tree the agent uses. Throws MetadataError; never returns a partial tree. */
  read(): Promise<MetaTree>;
  /**
   * Reads only the listings (eth0's MAC, the NICs, each NIC's private IPs): a few requests whatever
   * the size, enough to notice an attached or detached ENI or a moved IP. Absent where a full read
   * costs no more (a file). The HTTP source remembers the answers of its last listings read: the next one sends
   * those requests at once and, when every answer is the same, returns the same listings without reading them again.
   */
  listings?(): Promise<string>;
  /**
   * Reads again what can change while the listings stay the same (each NIC's primary IP, each address's EIP and its
   * mode) and the listings,
   * and takes the rest from `previous`, a complete read of this source: a third of a complete read's requests.
   * Absent where a complete read costs no more (a file).
   */
  refresh?(previous: MetaTree): Promise<MetaTree>;
}
