// What a dry run reads off a definition's steps (their callee, their type, the steps by id, the run info) and the recorder its runs write to.
import { walkSteps } from '../../interpreter/compile.ts';
import type { Definition, Step } from '../../interpreter/schema.ts';
import type { ApprovalRecord } from '../../interpreter/approvals.ts';
import type { CallRecord, DryRunEnvironment, PathEntry } from './dry-run-contract.ts';

export const jsonBytes = (value: unknown): number => (value === undefined ? 0 : Buffer.byteLength(JSON.stringify(value) ?? '', 'utf8'));

export function typeOf(step: Step): string {
  return step.type;
}

export function calleeOf(step: Step): string {
  switch (step.type) {
    case 'skill':
      return `skill ${step.skill}`;
    case 'integration':
      return `integration ${step.integration}`;
    case 'directive':
      return `directive ${step.directive}`;
    case 'agent':
      return `agent ${step.agent ?? step.agent_ref?.slug ?? ''}`;
    case 'model':
      return `model ${step.model}`;
    case 'sub_workflow':
      return `sub_workflow ${step.definition}@${step.version}`;
    default:
      return step.type;
  }
}

export const ACTIVITY_TYPES = new Set(['skill', 'integration', 'directive', 'agent', 'model']);

/** Steps by id of a definition (nested, handlers and compensations included). */
export function stepsOf(definition: Definition): Map<string, Step> {
  const byId = new Map<string, Step>();
  const visit = (step: Step) => byId.set(step.id, step);
  walkSteps(definition.steps, '/steps', visit);
  const rollback = (definition as { error_handling?: { rollback?: { steps?: Step[] } } }).error_handling?.rollback?.steps;
  if (rollback) walkSteps(rollback, '/error_handling/rollback/steps', visit);
  return byId;
}

export function runInfo(definition: Definition, id: string, env: DryRunEnvironment): Record<string, unknown> {
  return { id: id || 'dry-run', definition: definition.name, version: definition.version, startedBy: env.startedBy, correlationId: 'dry-run', lane: definition.lane ?? '', tenant: env.tenant, dryRun: true };
}

/** Shared by the top-level run and its simulated children. */
export class Recorder {
  readonly calls: CallRecord[] = [];
  readonly path: PathEntry[] = [];
  readonly warnings: string[] = [];
  readonly delivered: Array<{ name: string; atSeconds: number }> = [];
  readonly approvals = new Map<string, { run: string; record: ApprovalRecord; refused: Array<Record<string, unknown>>; scripted: boolean }>();
  readonly mockUse = new Map<string, number>();
  readonly approvalUse = new Map<string, number>();
  attempts = 0;
  payloadBytes = 0;
  largestPayload = 0;
  aborted?: string;

  payload(value: unknown): void {
    const bytes = jsonBytes(value);
    this.payloadBytes += bytes;
    this.largestPayload = Math.max(this.largestPayload, bytes);
  }
}
