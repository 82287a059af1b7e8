import Handlebars from 'handlebars';

/**
 * Compiles a template for shell-sourced or plain-text output. HTML escaping would corrupt such
 * files and give a false sense of safety: values are validated by the model instead. `strict`
 * makes a missing field an error rather than an empty string.
 */
export function compileTemplate<T>(source: string): (data: T) => string {
  const env = Handlebars.create();
  return env.compile<T>(source, { noEscape: true, strict: true });
}
