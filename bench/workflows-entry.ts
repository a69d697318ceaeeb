// The benchmark's workflow bundle entry: the platform's interpreter (exactly as workers/bundle.ts
// bundles it) plus the hand-written baselines, so both run on the same workers.
export { interpreter } from '../workflows/index.ts';
export { baselineEchoLoop, baselineForEach, baselineParallel, baselinePureLoop, baselineSequence, baselineWait } from './baseline-workflows.ts';
