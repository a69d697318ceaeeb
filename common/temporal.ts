import { readFileSync } from 'node:fs';
import type { TLSConfig } from '@temporalio/client';
import type { DataConverter } from '@temporalio/common';
import { payloadCodecs, type CodecKeySettings } from './codec.ts';
import type { Config } from './config.ts';

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

/**
 * The data converter of every client and worker: the payload codec when keys are configured
 * (common/codec.ts). Keys are read once per process and settings.
 */
const converters = new Map<string, DataConverter>();
export function dataConverterFor(config: CodecKeySettings): DataConverter {
  const cacheKey = JSON.stringify([config.PAYLOAD_CODEC_KEYS ?? '', config.PAYLOAD_CODEC_KEYS_FILE ?? '', config.SECRETS_DIR ?? '']);
  let converter = converters.get(cacheKey);
  if (!converter) {
    converter = { payloadCodecs: payloadCodecs(config) };
    converters.set(cacheKey, converter);
  }
  return converter;
}
