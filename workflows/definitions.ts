import { defineQuery } from '@temporalio/workflow';
import { RUN_STATE_QUERY } from '../common/constants.ts';
import type { RunState } from '../interpreter/engine.ts';

/** Returns the live state of a run: per-step status and outputs. */
export const runStateQuery = defineQuery<RunState>(RUN_STATE_QUERY);
