import { DefaultFailureConverter } from '@temporalio/common';

/**
 * The failure converter of every client, worker and the workflow bundle: a failure's message and
 * stack trace travel in `encodedAttributes`, a payload, so the payload codec seals them like the
 * rest of a run's data (an error message may quote a value the run carries). Clients decode them
 * back; Temporal Web reads them through the codec server. Loaded by path
 * (`failureConverterPath`), as the SDK requires for the workflow sandbox; sandbox-safe.
 */
export const failureConverter = new DefaultFailureConverter({ encodeCommonAttributes: true });
