// The whole flow on one screen: metadata -> model -> plan (render + diff) -> apply -> verify.
import type { Plan } from './apply/plan.js';
import type { ReloadMode } from './apply/reload.js';
import { reloadNetwork } from './apply/reload.js';
import type { Host } from './host/host.js';
import { fileMetadataSource, httpMetadataSource } from './metadata/index.js';
import type { MetadataSource } from './metadata/tree.js';
import { buildModel } from './model/index.js';
import type { InstanceModel } from './model/types.js';
import type { ApplyOutcome, Target, TargetOptions } from './targets/index.js';
import { getTarget } from './targets/index.js';
import type { TargetName } from './targets/target.js';
import type { VerifyReport } from './verify/report.js';

/** Everything one run of the pipeline needs to know. */
export interface PipelineOptions extends TargetOptions {
  target: TargetName;
  metadataUrl: string;
  metadataFile?: string;
  metadataTimeoutMs?: number;
  metadataConcurrency?: number;
  metadataRetries?: number;
  reload: ReloadMode;
}

/** The metadata source the options select: a JSON file for offline previews, else HTTP. */
export function metadataSource(host: Host, options: PipelineOptions): MetadataSource {
  if (options.metadataFile !== undefined) return fileMetadataSource(host, options.metadataFile);
  return httpMetadataSource(host, {
    baseUrl: options.metadataUrl,
    ...(options.metadataTimeoutMs !== undefined ? { timeoutMs: options.metadataTimeoutMs } : {}),
    ...(options.metadataConcurrency !== undefined ? { concurrency: options.metadataConcurrency } : {}),
    ...(options.metadataRetries !== undefined ? { retries: options.metadataRetries } : {}),
  });
}

/** Reads and validates the metadata. */
export async function readModel(host: Host, options: PipelineOptions): Promise<InstanceModel> {
  return buildModel(await metadataSource(host, options).read());
}

/** Metadata -> model -> plan. Writes nothing. */
export async function makePlan(host: Host, options: PipelineOptions): Promise<{ model: InstanceModel; target: Target; plan: Plan }> {
  const model = await readModel(host, options);
  const target = getTarget(options.target);
  const plan = await target.plan(host, model, options);
  return { model, target, plan };
}

/** Whether a plan would change anything. */
export function planIsEmpty(plan: Plan): boolean {
  return plan.runtime.length === 0 && plan.files.every((f) => f.action === 'unchanged');
}

/** The outcome of apply: what changed, what verification found, and whether it was rolled back. */
export interface ApplyResult {
  plan: Plan;
  outcome: ApplyOutcome;
  report?: VerifyReport;
  rolledBack: boolean;
}

/** Plan -> apply -> verify; a failed verification undoes this apply's changes so the guest stays as it was. */
export async function applyAndVerify(host: Host, options: PipelineOptions): Promise<ApplyResult> {
  const { target, plan } = await makePlan(host, { ...options, requireNics: options.runtime });
  const outcome = await target.apply(host, plan, options);
  if (options.reload !== 'none' && outcome.filesWritten.length > 0) {
    try {
      await reloadNetwork(host, options.reload);
    } catch (error) {
      await outcome.undo();
      throw error;
    }
  }
  if (!options.runtime) return { plan, outcome, rolledBack: false };
  let report: VerifyReport;
  try {
    report = await target.verify(host, plan);
  } catch (error) {
    // A verification that cannot run proves nothing: leave the guest as it was.
    await outcome.undo();
    throw error;
  }
  if (report.ok) return { plan, outcome, report, rolledBack: false };
  await outcome.undo();
  return { plan, outcome, report, rolledBack: true };
}

/** Verifies the live system and the files on disk against what the metadata asks for. Changes nothing. */
export async function verifyOnly(host: Host, options: PipelineOptions): Promise<{ plan: Plan; report: VerifyReport }> {
  const { target, plan } = await makePlan(host, { ...options, runtime: true, requireNics: true });
  const live = await target.verify(host, plan);
  const files = plan.files.map((f) => ({
    kind: 'file' as const,
    subject: f.path,
    ok: f.action === 'unchanged',
    detail: f.action === 'unchanged' ? 'matches the metadata' : f.action === 'create' ? 'missing' : 'differs from what the metadata asks for',
  }));
  const checks = [...files, ...live.checks];
  return { plan, report: { ok: checks.every((c) => c.ok), checks } };
}
