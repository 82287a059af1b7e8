// Handlebars templates are imported as specs precompiled at build time (scripts/hbs-precompile.mjs),
// by esbuild in the bundle and by a vitest plugin in tests.
declare module '*.hbs' {
  // A top-level import would turn this file into a module and the wildcard declaration into nothing.
  // eslint-disable-next-line @typescript-eslint/consistent-type-imports
  const spec: import('./render/handlebars.js').TemplateSpec;
  export default spec;
}

// Plain script files (the Windows script's fixed logic) are imported as their text, unchanged.
declare module '*.ps1' {
  const text: string;
  export default text;
}
