import type { Request, Response, Router } from 'express';
import type { z } from 'zod';
import { requireRole, type Role } from './auth.ts';
import { parseOr400 } from './http.ts';

/**
 * One route contract per REST operation (api/contracts/*.ts): method, path, roles, the zod
 * schemas of its parameters, query and body, and one response per status. The OpenAPI document
 * is generated from the contracts (api/openapi.ts), `handle` mounts a handler for one on an
 * express router (checking the roles and parsing the input with the same schemas), and the
 * handler's answer is typed by the contract's response schemas.
 */

export type Method = 'get' | 'post' | 'patch' | 'delete';

export interface HeaderSpec {
  description: string;
  schema: { type: 'integer'; minimum: number };
}

export interface ResponseSpec {
  description: string;
  /** The body's schema; absent for an answer without a body (204). */
  schema?: z.ZodType;
  /** The body's media type (default application/json). */
  type?: string;
  /** An error: `application/problem+json` (the Problem component); thrown as an HttpProblem, never returned. */
  problem?: true;
  headers?: Record<string, HeaderSpec>;
  /** Other media types the same status may answer with (the progress stream of GET …/events). */
  alternatives?: Record<string, z.ZodType>;
}

export interface RouteContract {
  method: Method;
  /** The OpenAPI template (`/v1/runs/{runId}`); express gets `:runId`. */
  path: string;
  summary: string;
  description?: string;
  tags: string[];
  /** Roles the key needs (one of them; admin always passes); checked before the input is parsed. */
  roles?: readonly Role[];
  params?: z.ZodObject;
  query?: z.ZodObject;
  /** Documented only: headers the handler reads itself. */
  headers?: z.ZodObject;
  body?: {
    schema: z.ZodType;
    /** Default true (documented as required). */
    required?: boolean;
    /** What an absent body is parsed as (`{}` for an optional body); without it the body is parsed as it came. */
    absentAs?: Record<string, never>;
  };
  responses: Record<number, ResponseSpec>;
  /** Default true: the operation needs a bearer API key. */
  security?: boolean;
  /** Default true: the answers the edge gives on every authenticated operation (api/edge.ts) are listed too. */
  edge?: boolean;
  /** Set when another module serves the route (its own auth or protocol); `handle` is not used for it. */
  servedBy?: string;
}

/** Keeps a contract's literal types (statuses, schemas) so handlers are typed by it. */
export function defineRoute<const C extends RouteContract>(contract: C): C {
  return contract;
}

export const json = <S extends z.ZodType>(description: string, schema: S): { description: string; schema: S } => ({ description, schema });
export const problem = (description: string): { description: string; problem: true } => ({ description, problem: true });
export const errors = {
  400: problem('Invalid request: `errors` lists every problem with its JSON path'),
  401: problem('Missing or invalid API key'),
  403: problem('The key lacks the required role'),
};
export const retryAfter: Record<string, HeaderSpec> = {
  'Retry-After': { description: 'seconds to wait before trying again', schema: { type: 'integer', minimum: 1 } },
};

type Parsed<S> = S extends z.ZodType ? z.output<S> : Record<string, never>;
type BodyOf<C extends RouteContract> = C['body'] extends { schema: infer S } ? z.output<S & z.ZodType> : undefined;

export interface Context<C extends RouteContract> {
  req: Request;
  res: Response;
  params: Parsed<C['params']>;
  query: Parsed<C['query']>;
  body: BodyOf<C>;
}

/**
 * A response schema's input type, with each open record (`z.record(z.string(), z.unknown())`, or
 * `z.object({})`) taken as any object: interfaces, which have no index signature, then satisfy it
 * as their JSON does.
 */
type Loose<T> = T extends readonly (infer E)[]
  ? Loose<E>[]
  : T extends object
    ? string extends keyof T
      ? unknown extends T[string]
        ? object
        : [T[string]] extends [never]
          ? object
          : { [K in keyof T]: Loose<T[K]> }
      : { [K in keyof T]: Loose<T[K]> }
    : T;

/** One success answer of the contract: a status it declares (not an error) and a body its schema accepts. */
export type Reply<C extends RouteContract> = {
  [S in keyof C['responses']]: C['responses'][S] extends { problem: true }
    ? never
    : C['responses'][S] extends { schema: infer B }
      ? { status: S; body: Loose<z.input<B & z.ZodType>>; location?: string; type?: string }
      : { status: S; location?: string };
}[keyof C['responses']];

/** What a handler returns after writing the answer itself (a Server-Sent Events stream). */
export const RESPONDED = Symbol('responded');

export type Handler<C extends RouteContract> = (ctx: Context<C>) => Promise<Reply<C> | typeof RESPONDED> | Reply<C>;

/** The express form of an OpenAPI path template. */
export const expressPath = (path: string): string => path.replace(/\{([^}]+)\}/g, ':$1');

/** Mounts `handler` for `contract` on `router`: the roles, then params, query and body parsed (a 400 with JSON paths), then the typed answer. */
export function handle<C extends RouteContract>(router: Router, contract: C, handler: NoInfer<Handler<C>>): void {
  const guards = contract.roles ? [requireRole(...contract.roles)] : [];
  router[contract.method](expressPath(contract.path), ...guards, async (req: Request, res: Response) => {
    const params = contract.params ? parseOr400(contract.params, req.params, 'params') : {};
    const query = contract.query ? parseOr400(contract.query, req.query, 'query') : {};
    const body = contract.body ? parseOr400(contract.body.schema, contract.body.absentAs !== undefined ? (req.body ?? contract.body.absentAs) : req.body) : undefined;
    const reply = await handler({ req, res, params, query, body } as Context<C>);
    if (reply === RESPONDED) return;
    send(res, contract, reply as { status: number; body?: unknown; location?: string; type?: string });
  });
}

function send(res: Response, contract: RouteContract, reply: { status: number; body?: unknown; location?: string; type?: string }): void {
  res.status(reply.status);
  if (reply.location !== undefined) res.location(reply.location);
  if (!('body' in reply)) {
    res.end();
    return;
  }
  const type = reply.type ?? contract.responses[reply.status]?.type;
  if (type !== undefined) res.type(type);
  if (typeof reply.body === 'string' && type !== undefined) res.send(reply.body);
  else res.json(reply.body);
}
