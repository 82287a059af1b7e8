// A tool's output, capped like every other input: both process runners (node:child_process, Bun.spawn) collect
// stdout and stderr through this.

/** The cap of a tool's output, like every other input: `ip -j` of 64 NICs x 256 addresses is about 5 MB. */
export const MAX_TOOL_OUTPUT_BYTES = 32 * 1024 * 1024;

/** One stream's output: chunks kept up to the cap; past it `onOver` runs (the runner kills the tool) and the rest is dropped. */
export interface CappedOutput {
  add(chunk: Uint8Array): void;
  text(): string;
  readonly over: boolean;
}

export function cappedOutput(cap: number, onOver: () => void): CappedOutput {
  const chunks: Uint8Array[] = [];
  let bytes = 0;
  let over = false;
  return {
    add(chunk) {
      bytes += chunk.length;
      if (bytes <= cap) {
        chunks.push(chunk);
        return;
      }
      if (!over) onOver();
      over = true;
    },
    text: () => Buffer.concat(chunks).toString('utf8'),
    get over() {
      return over;
    },
  };
}

/** The error of a run whose output went over the cap. */
export function outputCapError(file: string, cap: number): Error {
  return new Error(`${file} printed more than ${cap} bytes; stopped it`);
}
