import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import { toPointer } from '../interpreter/validate.ts';
import { HttpProblem } from './problem.ts';

/**
 * The API's edge (DESIGN invariant 11): what a request may look like before any handler, SQL or
 * visibility query sees it. URLs are decoded and free of control characters, bodies are UTF-8
 * JSON of bounded size and depth, and no string holds a NUL or a lone surrogate (PostgreSQL can
 * store neither). Every refusal is a 4xx problem with the path at fault.
 */

/** C0 and C1 control characters and DEL: never part of a name, id, cursor or filter. */
export const CONTROL_CHARACTER = /[\u0000-\u001f\u007f-\u009f]/;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

export interface EdgeLimits {
  /** API_MAX_BODY_BYTES */
  maxBodyBytes: number;
  /** API_MAX_JSON_DEPTH */
  maxJsonDepth: number;
}

/** An operation path of the OpenAPI document, as a matcher. */
export interface RouteTemplate {
  path: string;
  pattern: RegExp;
  params: string[];
  methods: string[];
}

/** Matchers for the document's paths (`/v1/runs/{runId}` → `^/v1/runs/([^/]+)/?$`). */
export function routeTemplates(paths: Record<string, Record<string, unknown>>): RouteTemplate[] {
  return Object.entries(paths).map(([path, operations]) => {
    const params: string[] = [];
    const source = path
      .split('/')
      .map((segment) => {
        const param = /^\{(.+)\}$/.exec(segment);
        if (param) {
          params.push(param[1]!);
          return '([^/]+)';
        }
        return segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      })
      .join('/');
    const methods = Object.keys(operations).map((m) => m.toUpperCase());
    if (methods.includes('GET')) methods.push('HEAD');
    // Express routes are case-insensitive and accept a trailing slash; so do these.
    return { path, pattern: new RegExp(`^${source}/?$`, 'i'), params, methods };
  });
}

/** The methods the paths matching `path` support (several templates can match one path). */
export function allowedMethods(templates: readonly RouteTemplate[], path: string): string[] {
  return [...new Set(templates.filter((t) => t.pattern.test(path)).flatMap((t) => t.methods))];
}

/**
 * Refuses a URL whose path segments do not percent-decode, or whose decoded path or query holds
 * control characters. Errors name the path parameter (from the matching template) or the query
 * parameter at fault.
 */
export function urlGuard(templates: readonly RouteTemplate[]): RequestHandler {
  return (req: Request, _res: Response, next: NextFunction): void => {
    const segments = req.path.split('/');
    // The most specific template: the one with the fewest parameters that matches.
    const template = templates.filter((t) => t.pattern.test(req.path)).sort((a, b) => a.params.length - b.params.length)[0];
    const names = template ? template.path.split('/').map((s) => /^\{(.+)\}$/.exec(s)?.[1]) : [];
    for (const [i, segment] of segments.entries()) {
      const where = names[i] ?? 'url';
      let decoded: string;
      try {
        decoded = decodeURIComponent(segment);
      } catch {
        next(new HttpProblem(400, 'Invalid request', 'the URL path has malformed percent-encoding', [{ path: where, message: 'malformed percent-encoding' }]));
        return;
      }
      if (CONTROL_CHARACTER.test(decoded)) {
        next(new HttpProblem(400, 'Invalid request', 'the URL path holds a control character', [{ path: where, message: 'control characters are not allowed' }]));
        return;
      }
    }
    for (const [name, value] of Object.entries(req.query as Record<string, unknown>)) {
      const values = Array.isArray(value) ? value : [value];
      if (CONTROL_CHARACTER.test(name) || values.some((v) => typeof v === 'string' && (CONTROL_CHARACTER.test(v) || LONE_SURROGATE.test(v)))) {
        next(
          new HttpProblem(400, 'Invalid request', `the query parameter "${name}" holds a control character`, [
            { path: name, message: 'control characters are not allowed' },
          ]),
        );
        return;
      }
    }
    next();
  };
}

/**
 * Where the first array or object nested deeper than `max` levels opens, as a path; undefined
 * when none does. One pass over the raw bytes, no recursion and nothing built but the keys on the
 * way, so a body nested 400,000 levels is refused before JSON.parse spends time on it.
 */
export function tooDeepAt(text: Uint8Array, max: number): Array<string | number> | undefined {
  const path: Array<string | number> = [];
  const inObject: boolean[] = [];
  let inString = false;
  let escaped = false;
  let stringStart = 0;
  let expectKey = false;
  for (let i = 0; i < text.length; i += 1) {
    const c = text[i];
    if (inString) {
      if (escaped) escaped = false;
      else if (c === 0x5c) escaped = true;
      else if (c === 0x22) {
        inString = false;
        if (expectKey) {
          path[path.length - 1] = keyText(text, stringStart, i);
          expectKey = false;
        }
      }
      continue;
    }
    switch (c) {
      case 0x22:
        inString = true;
        stringStart = i;
        break;
      case 0x7b:
      case 0x5b:
        if (inObject.length >= max) return path;
        inObject.push(c === 0x7b);
        path.push(c === 0x7b ? '' : 0);
        expectKey = c === 0x7b;
        break;
      case 0x7d:
      case 0x5d:
        inObject.pop();
        path.pop();
        expectKey = false;
        break;
      case 0x2c:
        if (inObject.at(-1) === true) expectKey = true;
        else if (inObject.at(-1) === false) path[path.length - 1] = (path.at(-1) as number) + 1;
        break;
      case 0x3a:
        expectKey = false;
        break;
      default:
    }
  }
  return undefined;
}

function keyText(text: Uint8Array, start: number, end: number): string {
  const quoted = Buffer.from(text.buffer, text.byteOffset + start, end - start + 1).toString('utf8');
  try {
    return JSON.parse(quoted) as string;
  } catch {
    return quoted.slice(1, -1);
  }
}

/**
 * The first string (value or key) PostgreSQL cannot store: one holding NUL, or a lone surrogate
 * (not Unicode; jsonb refuses it). Iterative, so the walk never depends on the stack.
 */
export function unstorableTextAt(value: unknown): { path: Array<string | number>; message: string } | undefined {
  const problem = (text: string): string | undefined =>
    text.includes('\u0000') ? 'NUL characters (\\u0000) are not allowed' : LONE_SURROGATE.test(text) ? 'lone UTF-16 surrogates are not valid Unicode' : undefined;
  const stack: Array<{ value: unknown; path: Array<string | number> }> = [{ value, path: [] }];
  while (stack.length > 0) {
    const { value: node, path } = stack.pop()!;
    if (typeof node === 'string') {
      const message = problem(node);
      if (message) return { path, message };
    } else if (Array.isArray(node)) {
      for (let i = node.length - 1; i >= 0; i -= 1) if (node[i] !== null && typeof node[i] !== 'number' && typeof node[i] !== 'boolean') stack.push({ value: node[i], path: [...path, i] });
    } else if (node !== null && typeof node === 'object') {
      const entries = Object.entries(node as Record<string, unknown>);
      for (let i = entries.length - 1; i >= 0; i -= 1) {
        const [key, child] = entries[i]!;
        const message = problem(key);
        if (message) return { path: [...path, key], message };
        if (child !== null && typeof child !== 'number' && typeof child !== 'boolean') stack.push({ value: child, path: [...path, key] });
      }
    }
  }
  return undefined;
}

const JSON_TYPES = ['application/json', 'application/*+json'];

function hasBody(req: Request): boolean {
  return req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
}

/**
 * Body reading for authenticated routes: a body is UTF-8 JSON (415 otherwise, RFC 8259), at most
 * `maxBodyBytes` after decompression (413), nested at most `maxJsonDepth` levels (400 with the
 * path where it goes deeper), and holds only storable text (400 with the path).
 */
export function jsonBody(limits: EdgeLimits): RequestHandler[] {
  const mediaType: RequestHandler = (req, _res, next) => {
    if (!['POST', 'PUT', 'PATCH'].includes(req.method) || !hasBody(req)) {
      next();
      return;
    }
    if (!req.is(JSON_TYPES)) {
      next(new HttpProblem(415, 'Unsupported Media Type', 'send the body as application/json', [{ path: 'Content-Type', message: 'not application/json' }]));
      return;
    }
    const charset = /;\s*charset\s*=\s*"?([^";\s]+)/i.exec(req.get('content-type') ?? '')?.[1]?.toLowerCase();
    if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') {
      next(new HttpProblem(415, 'Unsupported Media Type', 'JSON bodies are UTF-8 (RFC 8259)', [{ path: 'Content-Type', message: `charset ${charset.slice(0, 40)} is not supported` }]));
      return;
    }
    next();
  };
  const parse = express.json({
    limit: limits.maxBodyBytes,
    type: JSON_TYPES,
    verify: (_req, _res, buffer) => {
      const at = tooDeepAt(buffer, limits.maxJsonDepth);
      if (at) {
        throw new HttpProblem(400, 'Invalid request', `the body nests arrays and objects more than ${limits.maxJsonDepth} levels deep; the limit is ${limits.maxJsonDepth}`, [
          { path: toPointer(at), message: `nested more than ${limits.maxJsonDepth} levels deep` },
        ]);
      }
    },
  });
  const text: RequestHandler = (req, _res, next) => {
    const bad = req.body === undefined ? undefined : unstorableTextAt(req.body);
    if (bad) {
      next(new HttpProblem(400, 'Invalid request', `the body holds text that cannot be stored: ${bad.message}`, [{ path: toPointer(bad.path), message: bad.message }]));
      return;
    }
    next();
  };
  return [mediaType, parse, text];
}
