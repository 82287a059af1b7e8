/** What a rollback did. */
export interface RollbackResult {
  files: string[];
  runtime: string[];
  warnings: string[];
  /** False when a runtime change or sysctl could not be undone (the warnings say which). */
  complete: boolean;
}
