import { readFileSync } from 'node:fs';
import type { TLSConfig } from '@temporalio/client';
import type { DataConverter, LoadedDataConverter, Payload } from '@temporalio/common';
import { payloadCodecs, type CodecKeySettings } from './codec.ts';
import type { Config } from './config.ts';
import { modulePath } from './paths.ts';

/** Connection settings shared by the client (API) and the workers' NativeConnection. */
export interface TemporalConnectionSettings {
  address: string;
  tls?: TLSConfig | boolean;
  apiKey?: string;
}

/**
 * Derives connection settings from config. An API key (Temporal Cloud) implies TLS; client
 * certificates give mTLS; `TEMPORAL_TLS=true` alone gives server-verified TLS.
 */
export function temporalConnectionSettings(config: Config): TemporalConnectionSettings {
  const settings: TemporalConnectionSettings = { address: config.TEMPORAL_ADDRESS };
  const wantsTls = config.TEMPORAL_TLS ?? Boolean(config.TEMPORAL_API_KEY || config.TEMPORAL_TLS_CERT_PATH);
  if (wantsTls) {
    const tls: TLSConfig = {};
    if (config.TEMPORAL_TLS_CERT_PATH && config.TEMPORAL_TLS_KEY_PATH) {
      tls.clientCertPair = {
        crt: readFileSync(config.TEMPORAL_TLS_CERT_PATH),
        key: readFileSync(config.TEMPORAL_TLS_KEY_PATH),
      };
    }
    if (config.TEMPORAL_TLS_CA_PATH) tls.serverRootCACertificate = readFileSync(config.TEMPORAL_TLS_CA_PATH);
    if (config.TEMPORAL_TLS_SERVER_NAME) tls.serverNameOverride = config.TEMPORAL_TLS_SERVER_NAME;
    settings.tls = tls;
  }
  if (config.TEMPORAL_API_KEY) settings.apiKey = config.TEMPORAL_API_KEY;
  return settings;
}

/** The failure converter module (common/failure-converter.ts): clients, workers and the workflow bundle load it by path. */
export const FAILURE_CONVERTER_PATH = modulePath('common/failure-converter.ts');

/**
 * The data converter of every client and worker: the payload codec when keys are configured
 * (common/codec.ts), and failures whose message and stack trace are payloads too, so the codec
 * seals them. Keys are read once per process and settings.
 */
const converters = new Map<string, DataConverter>();
export function dataConverterFor(config: CodecKeySettings): DataConverter {
  const cacheKey = JSON.stringify([config.PAYLOAD_CODEC_KEYS ?? '', config.PAYLOAD_CODEC_KEYS_FILE ?? '', config.SECRETS_DIR ?? '']);
  let converter = converters.get(cacheKey);
  if (!converter) {
    converter = { payloadCodecs: payloadCodecs(config), failureConverterPath: FAILURE_CONVERTER_PATH };
    converters.set(cacheKey, converter);
  }
  return converter;
}

/** A payload as Temporal holds it, read the way a client reads it: its codecs undone (last first), then the payload converter. */
export async function decodePayload(converter: LoadedDataConverter, payload: Payload): Promise<unknown> {
  let payloads = [payload];
  for (const codec of [...converter.payloadCodecs].reverse()) payloads = await codec.decode(payloads);
  return converter.payloadConverter.fromPayload(payloads[0]!);
}

/**
 * The message of a failure proto read raw (a pending activity's `lastFailure`): the failure
 * converter moves it into `encodedAttributes`, sealed by the codec, and leaves "Encoded failure".
 */
export async function failureMessageOf(converter: LoadedDataConverter, failure: { message?: string | null; encodedAttributes?: Payload | null } | null | undefined): Promise<string | undefined> {
  if (!failure) return undefined;
  if (failure.encodedAttributes) {
    try {
      const attributes = (await decodePayload(converter, failure.encodedAttributes)) as { message?: unknown } | undefined;
      if (typeof attributes?.message === 'string') return attributes.message;
    } catch {
      // Sealed with a key this process lacks: the placeholder below is all it can say.
    }
  }
  return failure.message ? String(failure.message) : undefined;
}
