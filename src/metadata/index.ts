// The metadata layer: where the raw tree comes from (HTTP or a JSON file). The emulator of the service is in sandbox/.
export type { MetaTree, MetadataSource } from './tree.js';
export {
  httpMetadataSource,
  DEFAULT_METADATA_URL,
  type HttpSourceOptions,
  type HttpMetadataSource,
} from './http-source.js';
export { fileMetadataSource } from './file-source.js';
