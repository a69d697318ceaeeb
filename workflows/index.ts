// The workflow bundle's entry: every workflow type the workers register, by name.
export { interpreter } from './interpreter.ts';
export { agent } from './agent.ts';
