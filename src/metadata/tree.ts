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
}
