import type { RouteContract } from '../contract.ts';
import { authoringContracts } from './authoring.ts';
import { definitionContracts } from './definitions.ts';
import { operateContracts } from './operate.ts';
import { platformContracts } from './platform.ts';
import { runContracts } from './runs.ts';
import { triggerContracts } from './triggers.ts';
import { webhookContracts } from './webhooks.ts';

/** Every route of the API, once: the OpenAPI document is generated from this list (api/openapi.ts). */
export const CONTRACTS: readonly RouteContract[] = [
  ...Object.values(definitionContracts),
  ...Object.values(authoringContracts),
  ...Object.values(runContracts),
  ...Object.values(triggerContracts),
  ...Object.values(webhookContracts),
  ...Object.values(operateContracts),
  ...Object.values(platformContracts),
];
