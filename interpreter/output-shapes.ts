/**
 * What a step's output is known to hold, so references into it can be checked at registration:
 * the JSON Schema of the skill's, integration's, model's or agent's registered output (generated
 * from its zod schema by the installation) walked along the path an expression reads.
 *
 * Only closed objects are judged (`additionalProperties: false`, which is what zod's `z.object`
 * produces): a field missing there can never appear. Anything open, a union, a record or
 * `unknown` ends the check, since the field may exist at run time.
 *
 * Pure data and functions only: this module also runs in the Temporal workflow sandbox.
 */

/** A JSON Schema document, as plain data. */
export type JsonSchema = Record<string, unknown>;

/** A step's registered output contract. */
export interface OutputContract {
  /** How messages name the callee, e.g. `skill "http-fetch"`. */
  label: string;
  schema: JsonSchema;
}

/** Output contracts of the installation by `<family>:<name>` (`skills:http-fetch`, `agents:triage`). */
export type OutputContracts = ReadonlyMap<string, OutputContract>;

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** The field names of a closed object schema, or undefined when the schema is not one. */
export function closedFields(schema: unknown): string[] | undefined {
  if (!isRecord(schema) || schema.additionalProperties !== false || !isRecord(schema.properties)) return undefined;
  if (schema.anyOf !== undefined || schema.oneOf !== undefined || schema.allOf !== undefined || schema.patternProperties !== undefined) return undefined;
  return Object.keys(schema.properties);
}

/**
 * Why a path read from an output cannot exist, or undefined when it may. `path` holds the
 * statically known keys in order; `undefined` marks a computed one (where the check stops).
 */
export function missingField(contract: OutputContract, path: ReadonlyArray<string | number | undefined>): string | undefined {
  let schema: unknown = contract.schema;
  const walked: string[] = [];
  for (const key of path) {
    if (key === undefined || !isRecord(schema)) return undefined;
    if (typeof key === 'number') {
      if (schema.type !== 'array' || !isRecord(schema.items)) return undefined;
      schema = schema.items;
      walked.push(`[${key}]`);
      continue;
    }
    const fields = closedFields(schema);
    if (fields === undefined) return undefined;
    if (!fields.includes(key)) {
      const where = walked.length === 0 ? 'its output' : `its output's "${walked.join('.').replace(/\.\[/g, '[')}"`;
      return `${contract.label} returns no field "${key}"; ${where} has: ${fields.join(', ') || '(no fields)'}`;
    }
    schema = (schema.properties as Record<string, unknown>)[key];
    walked.push(key);
  }
  return undefined;
}
