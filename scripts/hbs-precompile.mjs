// Templates are precompiled at build time: the agent then ships only the Handlebars runtime (no
// compiler, no source-map), and starting it compiles nothing. Used by scripts/build.mjs (esbuild)
// and vitest.config.ts, so tests run the very same template functions.
import Handlebars from 'handlebars';

/**
 * HTML escaping is off: it is the wrong escaping for shell-sourced and PowerShell files, and safety
 * comes from validation. `strict` makes a missing field an error rather than an empty string.
 */
export const TEMPLATE_OPTIONS = { noEscape: true, strict: true };

/** An ES module whose default export is the precompiled template spec of `source`. */
export function precompileModule(source) {
  return `export default ${Handlebars.precompile(source, TEMPLATE_OPTIONS)};\n`;
}
