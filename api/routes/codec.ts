import { timingSafeEqual } from 'node:crypto';
import express, { Router, type NextFunction, type Request, type Response } from 'express';
import type { Payload, PayloadCodec } from '@temporalio/common';
import { z } from 'zod';
import type { Logger } from '../../common/logger.ts';
import type { ApiKeyStore } from '../auth.ts';
import { parseOr400 } from '../http.ts';
import { perKeyRateLimit, type RateLimitOptions } from '../rate-limit.ts';
import { HttpProblem } from '../problem.ts';

/**
 * The codec server (Temporal's remote codec protocol, docs/sensitive-data.md): `POST
 * /codec/encode` and `POST /codec/decode` take `{"payloads": [{metadata, data}]}` in protobuf
 * JSON (base64 bytes) and answer the same shape, run through the platform's payload codec. Temporal
 * Web and the `temporal` CLI call it to show runs in the clear to the people allowed to.
 *
 * Who may call it:
 * - a caller with `Authorization: Bearer <API key>` of a key holding `sensitive-reader` (the
 *   `temporal` CLI's `--codec-auth`, or a Temporal UI behind a proxy that adds it);
 * - Temporal Web itself, which sends no credentials, through `/codec/ui/<CODEC_UI_TOKEN>/...`:
 *   the URL the dev server's `--ui-codec-endpoint` names. Browsers reach it only from the
 *   origins of CODEC_CORS_ORIGINS (the UI's), and only those get CORS headers.
 */

export interface CodecServerOptions {
  codecs: readonly PayloadCodec[];
  keys: ApiKeyStore;
  /** The path token of Temporal Web's endpoint; without one, only API keys open the codec. */
  uiToken?: string | undefined;
  /** Origins allowed to call from a browser (CORS). */
  corsOrigins: readonly string[];
  /** Largest request body, in bytes. */
  maxBodyBytes: number;
  logger: Logger;
  /** The API's per-key request budget, also for the codec (the UI's path counts as one key). */
  rateLimit: RateLimitOptions;
}

const bytes = z.string().max(64 * 1024 * 1024).regex(/^[A-Za-z0-9+/_-]*={0,2}$/, 'base64');
const payloadsSchema = z.object({
  payloads: z
    .array(
      z.object({
        metadata: z.record(z.string().max(256), bytes).optional(),
        data: bytes.optional(),
      }),
    )
    .max(10_000),
});

const fromBase64 = (text: string) => new Uint8Array(Buffer.from(text, 'base64'));
const toBase64 = (data: Uint8Array | null | undefined) => Buffer.from(data ?? new Uint8Array()).toString('base64');

function toPayloads(body: z.infer<typeof payloadsSchema>): Payload[] {
  return body.payloads.map((p) => ({
    metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, fromBase64(v)])),
    data: fromBase64(p.data ?? ''),
  }));
}

function toJson(payloads: Payload[]): { payloads: Array<{ metadata: Record<string, string>; data: string }> } {
  return {
    payloads: payloads.map((p) => ({
      metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, toBase64(v)])),
      data: toBase64(p.data),
    })),
  };
}

function sameSecret(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * CORS for the UI's origins only; any other origin gets no CORS headers (the browser blocks
 * the answer) and a 403, so a page elsewhere cannot use the codec even through a simple request.
 */
function corsFor(origins: ReadonlySet<string>) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const origin = req.get('origin');
    res.set('Vary', 'Origin');
    // The codec's answers are read cross-origin by design (helmet's default is same-origin).
    res.set('Cross-Origin-Resource-Policy', 'cross-origin');
    if (origin !== undefined) {
      if (!origins.has(origin)) {
        next(new HttpProblem(403, 'Forbidden', `the codec server answers browsers from ${[...origins].join(', ') || 'no origin'} only (CODEC_CORS_ORIGINS)`));
        return;
      }
      res.set('Access-Control-Allow-Origin', origin);
      res.set('Access-Control-Allow-Credentials', 'true');
    }
    if (req.method === 'OPTIONS') {
      res.set('Access-Control-Allow-Methods', 'POST, OPTIONS');
      res.set('Access-Control-Allow-Headers', 'Content-Type, X-Namespace, Authorization');
      res.set('Access-Control-Max-Age', '600');
      res.status(204).end();
      return;
    }
    next();
  };
}

/** Callers with an API key of the role `sensitive-reader`. */
function byKeyOf(options: CodecServerOptions) {
  return (req: Request, _res: Response, next: NextFunction): void => {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(req.get('authorization') ?? '');
    const entry = match?.[1] ? options.keys.resolveEntry(match[1]) : undefined;
    if (!entry) {
      next(new HttpProblem(401, 'Unauthorized', 'send "Authorization: Bearer <api key>" of a key with the role "sensitive-reader"'));
      return;
    }
    if (!entry.principal.roles.includes('sensitive-reader')) {
      next(new HttpProblem(403, 'Forbidden', 'the codec server needs the role "sensitive-reader"'));
      return;
    }
    req.principal = entry.principal;
    req.apiKeyId = entry.id;
    next();
  };
}

/** Temporal Web, by the UI token in the path. */
function byUiTokenOf(options: CodecServerOptions) {
  return (req: Request, _res: Response, next: NextFunction): void => {
    const token = String(req.params.token ?? '');
    if (!options.uiToken || !sameSecret(token, options.uiToken)) {
      next(new HttpProblem(404, 'Not Found', 'no codec endpoint here'));
      return;
    }
    next();
  };
}

export function codecRoutes(options: CodecServerOptions): Router {
  const router = Router();
  const origins = new Set(options.corsOrigins.map((o) => o.replace(/\/$/, '')));
  const cors = corsFor(origins);
  const byKey = byKeyOf(options);
  const byUiToken = byUiTokenOf(options);

  const run = (direction: 'encode' | 'decode') => async (req: Request, res: Response, next: NextFunction) => {
    const started = Date.now();
    try {
      const body = parseOr400(payloadsSchema, req.body ?? {});
      let payloads = toPayloads(body);
      // Encoding applies the codecs in order, decoding in reverse (as the SDK's data converter does).
      const chain = direction === 'encode' ? [...options.codecs] : [...options.codecs].reverse();
      for (const codec of chain) payloads = direction === 'encode' ? await codec.encode(payloads) : await codec.decode(payloads);
      res.json(toJson(payloads));
    } catch (error) {
      if (error instanceof HttpProblem) next(error);
      else next(new HttpProblem(400, 'Payload not decodable', (error as Error).message));
    } finally {
      // Logged here, without the path: the UI's path holds its token.
      options.logger.info(
        { codec: direction, channel: req.params.token ? 'ui' : 'key', status: res.statusCode, ms: Date.now() - started, namespace: req.get('x-namespace'), principal: req.principal?.principal },
        'codec',
      );
    }
  };

  const json = express.json({ limit: options.maxBodyBytes, type: () => true });
  const limit = perKeyRateLimit(options.rateLimit);
  const jsonOnly = (req: Request, _res: Response, next: NextFunction): void => {
    next(req.is('application/json') ? undefined : new HttpProblem(415, 'Unsupported Media Type', 'send the payloads as application/json', [{ path: 'Content-Type', message: 'not supported' }]));
  };
  const uiKey = (req: Request, _res: Response, next: NextFunction): void => {
    req.apiKeyId = 'codec-ui';
    next();
  };
  for (const direction of ['encode', 'decode'] as const) {
    router.options([`/codec/${direction}`, `/codec/ui/:token/${direction}`], cors);
    router.post(`/codec/${direction}`, cors, byKey, limit, jsonOnly, json, run(direction));
    router.post(`/codec/ui/:token/${direction}`, cors, byUiToken, uiKey, limit, jsonOnly, json, run(direction));
  }
  return router;
}
