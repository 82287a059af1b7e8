import { compileTemplate } from '../../render/handlebars.js';
import type { RenderedFile } from '../../render/types.js';
import source from '../../../templates/cloud-init/network.cfg.hbs';

/** The drop-in that stops cloud-init's network configuration (`--cloud-init disable`). */
export const CLOUD_INIT_DROPIN = '/etc/cloud/cloud.cfg.d/99-eip-agent-network.cfg';

const template = compileTemplate<Record<string, never>>(source);

/** The drop-in, a fixed text. Pure. */
export function cloudInitDropIn(): RenderedFile {
  return { path: CLOUD_INIT_DROPIN, mode: 0o644, content: template({}) };
}
