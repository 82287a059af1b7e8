import type { PipelineOptions } from '../pipeline.js';

/** What the daemon needs on top of the pipeline options; all of it may change on reload. */
export interface DaemonOptions {
  pipeline: PipelineOptions;
  /** Time between polls while all is well. */
  intervalMs: number;
  /** Lower-case MACs of NICs to leave alone. */
  ignoreNics: readonly string[];
  /** node_exporter textfile to rewrite after each apply, rollback or error (absolute, under pipeline.root). */
  metricsTextfile?: string;
}
