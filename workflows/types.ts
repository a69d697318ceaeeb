import type { RunState } from '../interpreter/engine.ts';
import type { Definition } from '../interpreter/schema.ts';

/** What the API passes to the interpreter workflow: the pinned definition and the run's identity. */
export interface RunInput {
  /** The validated definition, exactly as registered; the run never re-reads a mutable copy. */
  definition: Definition;
  /** sha256 of the registered definition's canonical JSON. */
  definitionHash: string;
  input: unknown;
  lane: string;
  tenant: string;
  /** The principal whose credential started the run. */
  startedBy: string;
  correlationId: string;
}

/** The interpreter's result: the run's output and the final state of every step. */
export interface RunResult {
  output: unknown;
  state: RunState;
}
