import type HandlebarsTypes from 'handlebars';
import Handlebars from 'handlebars/runtime.js';

/** A template precompiled at build time, as an `.hbs` import yields it. */
export type TemplateSpec = Parameters<typeof HandlebarsTypes.template>[0];

const runtime = Handlebars as unknown as typeof HandlebarsTypes;

/**
 * A template function from a spec precompiled at build time (scripts/hbs-precompile.mjs: HTML
 * escaping off, strict). Each template gets its own runtime environment, so no helper or partial
 * registered elsewhere can change what it renders.
 */
export function compileTemplate<T>(spec: TemplateSpec): (data: T) => string {
  return runtime.create().template<T>(spec);
}
