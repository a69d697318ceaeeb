import { createServer, type IncomingMessage } from 'node:http';
import { gunzipSync } from 'node:zlib';

/**
 * A loopback OTLP/HTTP trace receiver (the double of an OpenTelemetry collector): it accepts
 * `POST /v1/traces` in the OTLP JSON encoding (`OTEL_EXPORTER_OTLP_PROTOCOL=http/json`), answers
 * as a collector does (200 with an empty partial-success body) and keeps every span it decoded.
 */
export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  service: string | undefined;
  scope: string | undefined;
  attributes: Record<string, unknown>;
}

export interface OtlpReceiver {
  /** The base URL, for OTEL_EXPORTER_OTLP_ENDPOINT. */
  url: string;
  spans: ReceivedSpan[];
  /** Export requests received (including ones it refused). */
  requests: number;
  /** Spans received, kept or not. */
  received: number;
  close(): Promise<void>;
}

interface OtlpValue {
  stringValue?: string;
  intValue?: string | number;
  boolValue?: boolean;
  doubleValue?: number;
}
interface OtlpAttribute {
  key: string;
  value: OtlpValue;
}

const attributesOf = (list: OtlpAttribute[] | undefined): Record<string, unknown> =>
  Object.fromEntries((list ?? []).map((a) => [a.key, a.value.stringValue ?? a.value.intValue ?? a.value.boolValue ?? a.value.doubleValue]));

/** OTLP JSON carries ids as hex; a base64 id (the protobuf JSON mapping) is turned into hex too. */
const hex = (id: string | undefined): string | undefined => {
  if (!id) return undefined;
  return /^[\da-f]+$/i.test(id) ? id.toLowerCase() : Buffer.from(id, 'base64').toString('hex');
};

function decode(body: Buffer, req: IncomingMessage): ReceivedSpan[] {
  const text = (req.headers['content-encoding'] === 'gzip' ? gunzipSync(body) : body).toString('utf8');
  const request = JSON.parse(text) as {
    resourceSpans?: Array<{
      resource?: { attributes?: OtlpAttribute[] };
      scopeSpans?: Array<{ scope?: { name?: string }; spans?: Array<{ traceId: string; spanId: string; parentSpanId?: string; name: string; kind: number; attributes?: OtlpAttribute[] }> }>;
    }>;
  };
  const out: ReceivedSpan[] = [];
  for (const rs of request.resourceSpans ?? []) {
    const service = attributesOf(rs.resource?.attributes)['service.name'] as string | undefined;
    for (const ss of rs.scopeSpans ?? []) {
      for (const s of ss.spans ?? []) {
        const parent = hex(s.parentSpanId);
        out.push({
          traceId: hex(s.traceId)!,
          spanId: hex(s.spanId)!,
          ...(parent ? { parentSpanId: parent } : {}),
          name: s.name,
          kind: s.kind,
          service,
          scope: ss.scope?.name,
          attributes: attributesOf(s.attributes),
        });
      }
    }
  }
  return out;
}

/** `keep: false` counts spans without keeping them (the benchmark's long runs). */
export async function startOtlpReceiver(options: { keep?: boolean } = {}): Promise<OtlpReceiver> {
  const receiver: OtlpReceiver = { url: '', spans: [], requests: 0, received: 0, close: async () => undefined };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      receiver.requests += 1;
      if (req.method !== 'POST' || new URL(req.url ?? '/', 'http://x').pathname !== '/v1/traces') {
        res.writeHead(404).end();
        return;
      }
      try {
        const spans = decode(Buffer.concat(chunks), req);
        receiver.received += spans.length;
        if (options.keep !== false) receiver.spans.push(...spans);
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      } catch (error) {
        res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ message: (error as Error).message }));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  receiver.url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  receiver.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return receiver;
}
