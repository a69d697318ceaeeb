/** One located problem in a request: a JSON Pointer into the body (or a query parameter name). */
export interface ProblemDetail {
  path: string;
  message: string;
  stepId?: string;
}

/**
 * An HTTP error rendered as RFC 9457 `application/problem+json`, with the platform's `errors`
 * extension listing every located problem.
 */
export class HttpProblem extends Error {
  override name = 'HttpProblem';
  constructor(
    readonly status: number,
    readonly title: string,
    readonly detail?: string,
    readonly errors?: ProblemDetail[],
    readonly extra?: Record<string, unknown>,
  ) {
    super(detail ?? title);
  }
}
