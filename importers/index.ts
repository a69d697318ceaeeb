/**
 * Definitions written for other engines, converted to native definitions. Parsing of the source
 * text lives here; each format's translation is pure (importers/asl.ts).
 */
import JSON5 from 'json5';
import { parse as parseYaml } from 'yaml';
import { importAsl, type AslImportOptions } from './asl.ts';
import type { ImportResult } from './common.ts';
import { importServerlessWorkflow, type ServerlessWorkflowImportOptions } from './serverless-workflow.ts';

export type { ImportEntry, ImportResult } from './common.ts';

export const IMPORT_FORMATS = ['asl', 'serverless-workflow'] as const;
export type ImportFormat = (typeof IMPORT_FORMATS)[number];

export class ImportSourceError extends Error {}

/**
 * The source as a document: an object is taken as it is; text is read as JSON5 (JSON with trailing
 * commas and comments, as LocalStack's templates are written), else as YAML.
 */
export function parseSource(source: unknown): unknown {
  if (typeof source !== 'string') return source;
  try {
    return JSON5.parse(source);
  } catch (json5Error) {
    try {
      const doc: unknown = parseYaml(source, { maxAliasCount: 100 });
      if (doc !== null && typeof doc === 'object') return doc;
    } catch {
      // fall through: report the JSON5 error, the likelier intent
    }
    throw new ImportSourceError(`the source is neither JSON5 nor YAML: ${(json5Error as Error).message}`);
  }
}

export function importDefinition(format: ImportFormat, source: unknown, options: AslImportOptions & ServerlessWorkflowImportOptions): ImportResult {
  const doc = parseSource(source);
  switch (format) {
    case 'asl':
      return importAsl(doc, options);
    case 'serverless-workflow':
      return importServerlessWorkflow(doc, options);
  }
}
