import { DefaultFailureConverter, type FailureConverter, type PayloadConverter, type ProtoFailure } from '@temporalio/common';
import { PLAIN_FAILURE_MESSAGE } from './constants.ts';

const sealed = new DefaultFailureConverter({ encodeCommonAttributes: true });
const plain = new DefaultFailureConverter();

/**
 * The failure converter of every client, worker and the workflow bundle: a failure's message and
 * stack trace travel in `encodedAttributes`, a payload, so the payload codec seals them like the
 * rest of a run's data (an error message may quote a value the run carries). Clients decode them
 * back. The exception is a failure marked PLAIN_FAILURE_MESSAGE (an update's refusal, written for
 * the person who sent it, with no run data). Loaded by path (`failureConverterPath`), as the SDK
 * requires for the workflow sandbox; sandbox-safe.
 */
export const failureConverter: FailureConverter = {
  errorToFailure(error: unknown, payloadConverter: PayloadConverter, ...rest: unknown[]): ProtoFailure {
    const converter = (error as Record<string, unknown> | null)?.[PLAIN_FAILURE_MESSAGE] === true ? plain : sealed;
    return (converter.errorToFailure as (...args: unknown[]) => ProtoFailure)(error, payloadConverter, ...rest);
  },
  failureToError(failure: ProtoFailure, payloadConverter: PayloadConverter, ...rest: unknown[]): Error {
    return (sealed.failureToError as (...args: unknown[]) => Error)(failure, payloadConverter, ...rest);
  },
};
