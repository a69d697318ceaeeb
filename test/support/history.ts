import { Client, Connection } from '@temporalio/client';
import { temporalAddress } from './platform.ts';

/**
 * What a run's Temporal history holds, for tests that hold a prediction against a real run:
 * its length, and how many lifecycle-event batches (`recordRunEvents` activities) it wrote.
 * Those batches flush on timers, so on a loaded machine a slow run writes more of them than the
 * estimator's one per slow wait; each costs 6 events (the activity's 3 and a workflow task's 3).
 */
export async function historyCounts(workflowId: string, namespace: string): Promise<{ events: number; lifecycleBatches: number }> {
  const connection = await Connection.connect({ address: temporalAddress() });
  try {
    const client = new Client({ connection, namespace });
    const history = await client.workflow.getHandle(workflowId).fetchHistory();
    const events = history.events ?? [];
    const lifecycleBatches = events.filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'recordRunEvents').length;
    return { events: events.length, lifecycleBatches };
  } finally {
    await connection.close();
  }
}

/** What one lifecycle-event batch adds to a history: the activity's 3 events and a workflow task's 3. */
export const LIFECYCLE_BATCH_EVENTS = 6;
