// Handlebars templates are imported as text: esbuild's text loader in the bundle, a tiny plugin under vitest.
declare module '*.hbs' {
  const text: string;
  export default text;
}
