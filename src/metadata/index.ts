// The metadata layer: where the raw tree comes from (HTTP or a JSON file) and an emulator of the service.
export type { MetaTree, MetadataSource } from './tree.js';
export { httpMetadataSource, DEFAULT_METADATA_URL, type HttpSourceOptions, type HttpMetadataSource } from './http-source.js';
export { fileMetadataSource } from './file-source.js';
export {
  startMetadataEmulator,
  controlEmulator,
  type MetadataEmulator,
  type MetadataFaults,
  type FaultRule,
  type EmulatorOptions,
} from './emulator.js';
