// The model's public surface: callers import from here, not from the helpers behind it.

/** Raw metadata tree → validated InstanceModel (throws ValidationError). */
export { buildModel } from './build.js';
/** The validated model the renderers consume. */
export type { InstanceModel, NicModel, PrivateAddress, PublicIpMode } from './types.js';
