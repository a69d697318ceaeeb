import { extendZodWithOpenApi } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';

extendZodWithOpenApi(z);

/**
 * zod 4 copies prototype methods onto each schema when it is built, so schemas created before
 * `extendZodWithOpenApi` ran (the interpreter's, which must not depend on this library) lack
 * `.openapi()`. A clone is built now and has it.
 */
export function withOpenApi<T extends z.ZodType>(schema: T): T {
  return schema.clone() as T;
}

/** A schema the OpenAPI document shows as the component `name` (referenced by `$ref`). */
export function named<T extends z.ZodType>(name: string, schema: T): T {
  return withOpenApi(schema).openapi(name) as T;
}

export { z };
