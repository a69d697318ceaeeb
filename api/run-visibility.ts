import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { INTERPRETER_WORKFLOW_TYPE } from '../common/constants.ts';
import { SA } from '../common/search-attributes.ts';
import { summaryOf, type RunStatus, type RunSummary } from './run-views.ts';

/** Runs found through Temporal's visibility: the tenant's list, and the running runs an event's correlation id reaches. */

/** Escapes a value for a single-quoted string in a visibility query. */
export function quoteable(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/'/g, "\\'");
}


const STATUS_QUERY_VALUE: Record<Exclude<RunStatus, 'deferred'>, string> = {
  running: 'Running',
  completed: 'Completed',
  failed: 'Failed',
  cancelled: 'Canceled',
  terminated: 'Terminated',
  timed_out: 'TimedOut',
};

/** Started runs of the tenant, newest first: only the latest link of a continue-as-new chain. */
export async function listStartedRuns(client: Client, tenant: string, filter: { definition?: string; status?: Exclude<RunStatus, 'deferred'> | undefined; limit: number }): Promise<RunSummary[]> {
  // A run that continued as new is one run to its caller: list only the latest link of each chain.
  const clauses = [`WorkflowType = '${INTERPRETER_WORKFLOW_TYPE}'`, `${SA.tenant.name} = '${quoteable(tenant)}'`, `ExecutionStatus != 'ContinuedAsNew'`];
  if (filter.definition) clauses.push(`${SA.definition.name} = '${quoteable(filter.definition)}'`);
  if (filter.status) clauses.push(`ExecutionStatus = '${STATUS_QUERY_VALUE[filter.status]}'`);
  const runs: RunSummary[] = [];
  for await (const info of client.workflow.list({ query: clauses.join(' AND '), pageSize: filter.limit })) {
    runs.push(summaryOf(info));
    if (runs.length >= filter.limit) break;
  }
  return runs;
}

/** Signals an event to the tenant's running runs with this correlation id (except `skip`). */
export async function deliverEvent(client: Client, tenant: string, correlationId: string, name: string, event: unknown, skip: ReadonlySet<string>): Promise<Array<{ runId: string }>> {
  const query = [
    `WorkflowType = '${INTERPRETER_WORKFLOW_TYPE}'`,
    `${SA.tenant.name} = '${quoteable(tenant)}'`,
    `${SA.correlationId.name} = '${quoteable(correlationId)}'`,
    `ExecutionStatus = 'Running'`,
  ].join(' AND ');
  const delivered: Array<{ runId: string }> = [];
  for await (const info of client.workflow.list({ query })) {
    if (skip.has(info.workflowId)) continue;
    try {
      await client.workflow.getHandle(info.workflowId).signal(name, event);
      delivered.push({ runId: info.workflowId });
    } catch (error) {
      if (!(error instanceof WorkflowNotFoundError)) throw error;
    }
  }
  return delivered;
}
