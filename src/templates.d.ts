// Handlebars templates are imported as specs precompiled at build time (scripts/hbs-precompile.mjs),
// by esbuild in the bundle and by a vitest plugin in tests.
declare module '*.hbs' {
  // A top-level import would turn this file into a module and the wildcard declaration into nothing.
  // eslint-disable-next-line @typescript-eslint/consistent-type-imports
  const spec: import('./render/handlebars.js').TemplateSpec;
  export default spec;
}
