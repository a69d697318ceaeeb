import { existsSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { confirm, input, number, search, select } from '@inquirer/prompts';
import { ApiClient, CliError, EXIT } from './client.ts';
import { printJson, type Io } from './output.ts';

/**
 * `workflow create`: seed 002's wizard in seven steps: purpose, steps, skills and agents (from the
 * live catalog, GET /v1/catalog), data flow (each input wired to the run's input, an earlier
 * step's declared output or a value), failure strategy per step, review (the JSON, validated by
 * the server), save (and optionally register). Prompts are @inquirer/prompts on stdin/stdout.
 */

interface JsonSchema {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  description?: string;
  enum?: unknown[];
  default?: unknown;
  [key: string]: unknown;
}

interface ActivityView {
  name: string;
  description: string;
  sideEffects: boolean;
  input: JsonSchema;
  output: JsonSchema;
  secretInputs?: string[];
}

interface Catalog {
  skills: ActivityView[];
  integrations: ActivityView[];
  agents: Array<{ name: string; description: string; model?: string; outputSchema?: JsonSchema }>;
  models: string[];
  lanes: string[];
  defaultLane: string;
}

type Kind = 'skill' | 'integration' | 'agent' | 'approval';

interface DraftStep {
  id: string;
  kind: Kind;
  /** Fields later steps can read: `${steps.<id>.output.<field>}`. */
  outputs: string[];
  body: Record<string, unknown>;
}

const APPROVAL_OUTPUTS = ['approved', 'decision', 'deciders', 'comments', 'timedOut'];

function slug(text: string): string {
  return text.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').split('-').slice(0, 5).join('-').slice(0, 60) || 'my-workflow';
}

function fieldsOf(schema: JsonSchema | undefined): string[] {
  return Object.keys(schema?.properties ?? {});
}

/** A typed answer: JSON when it parses (numbers, booleans, objects), the text otherwise. */
function literal(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function typeOf(schema: JsonSchema | undefined): string {
  if (!schema) return 'any';
  if (schema.enum) return schema.enum.map((v) => JSON.stringify(v)).join(' | ');
  return Array.isArray(schema.type) ? schema.type.join(' | ') : (schema.type ?? 'any');
}

export async function runWizard(api: ApiClient, io: Io, options: { out?: string; json: boolean }): Promise<number> {
  const say = (text: string) => io.stdout.write(`${text}\n`);
  const catalog = await api.get<Catalog>('/v1/catalog');

  // 1. Purpose
  say('\n1/7  Purpose');
  const description = await input({ message: 'What should this workflow accomplish?', required: true });
  const name = await input({
    message: 'Name',
    default: slug(description),
    validate: (v) => /^[A-Za-z0-9][A-Za-z0-9 ._-]{0,99}$/.test(v) || 'names are 1-100 letters, digits, spaces, ".", "_" or "-"',
  });
  const version = await input({ message: 'Version', default: '1.0.0', validate: (v) => /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?$/.test(v) || 'a semantic version such as 1.0.0' });
  const lane =
    catalog.lanes.length > 1
      ? await select({ message: 'Lane', default: catalog.defaultLane, choices: catalog.lanes.map((l) => ({ name: l, value: l })) })
      : catalog.defaultLane;
  const inputFields = (await input({ message: 'Fields of the run\'s input, comma-separated (empty for none)', default: '' }))
    .split(',')
    .map((f) => f.trim())
    .filter(Boolean);

  // 2-5. Steps, each with its skill or agent, data flow and failure strategy
  const steps: DraftStep[] = [];
  const errorPolicies: Record<string, Record<string, unknown>> = {};
  for (let n = 1; ; n++) {
    say(`\n2/7  Step ${n}`);
    const kind = await select<Kind | 'done'>({
      message: steps.length === 0 ? 'What does the first step do?' : 'Add another step?',
      choices: [
        { name: 'Run a skill', value: 'skill', description: `${catalog.skills.length} skills here` },
        { name: 'Call an integration (external API)', value: 'integration', description: `${catalog.integrations.length} integrations here` },
        { name: 'Ask an agent', value: 'agent', description: catalog.agents.length ? `${catalog.agents.length} agents here` : 'no agents are registered here' },
        { name: 'Wait for a human approval', value: 'approval' },
        ...(steps.length > 0 ? [{ name: 'No more steps: review', value: 'done' as const }] : []),
      ],
    });
    if (kind === 'done') break;

    // 3. Suggestions from the live catalog
    say('3/7  Choose what it calls');
    let body: Record<string, unknown> = {};
    let outputs: string[] = [];
    let schema: JsonSchema | undefined;
    let secretInputs: string[] = [];
    let suggestedId = kind as string;
    if (kind === 'skill' || kind === 'integration') {
      const specs = kind === 'skill' ? catalog.skills : catalog.integrations;
      if (specs.length === 0) throw new CliError(`this installation has no ${kind}s`, EXIT.failed);
      const chosen = await search<ActivityView>({
        message: `Which ${kind}? (type to filter)`,
        source: (term) =>
          specs
            .filter((s) => !term || s.name.includes(term) || s.description.toLowerCase().includes(term.toLowerCase()))
            .map((s) => ({ name: s.name, value: s, description: `${s.description}${s.sideEffects ? ' (side effects)' : ''}\n  inputs: ${fieldsOf(s.input).map((f) => `${f}${s.input.required?.includes(f) ? '' : '?'}: ${typeOf(s.input.properties?.[f])}`).join(', ') || '(none)'}` })),
      });
      body = { type: kind, [kind]: chosen.name };
      schema = chosen.input;
      secretInputs = chosen.secretInputs ?? [];
      outputs = fieldsOf(chosen.output);
      suggestedId = chosen.name.replace(/[^A-Za-z0-9_-]+/g, '-');
    } else if (kind === 'agent') {
      if (catalog.agents.length === 0) {
        say('No agents are registered on this installation (AGENTS_FILE); pick another kind.');
        n--;
        continue;
      }
      const chosen = await search({
        message: 'Which agent? (type to filter)',
        source: (term) =>
          catalog.agents
            .filter((a) => !term || a.name.includes(term) || a.description.toLowerCase().includes(term.toLowerCase()))
            .map((a) => ({ name: a.name, value: a, description: `${a.description}${a.model ? ` (model ${a.model})` : ''}` })),
      });
      body = { type: 'agent', agent: chosen.name };
      outputs = fieldsOf(chosen.outputSchema);
      suggestedId = chosen.name.replace(/[^A-Za-z0-9_-]+/g, '-');
    } else {
      body = { type: 'approval' };
      outputs = APPROVAL_OUTPUTS;
      suggestedId = 'sign-off';
    }
    const taken = new Set(steps.map((s) => s.id));
    let defaultId = suggestedId;
    for (let i = 2; taken.has(defaultId); i++) defaultId = `${suggestedId}-${i}`;
    const id = await input({
      message: 'Step id',
      default: defaultId,
      validate: (v) => (!/^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$/.test(v) ? 'ids are letters, digits, "_" or "-"' : taken.has(v) ? `"${v}" is taken` : true),
    });

    // 4. Data flow: each input from the run's input, an earlier step's output, or a value
    const sources = [
      ...inputFields.map((f) => ({ name: `the run's input: ${f}`, value: `\${input.${f}}` })),
      ...steps.flatMap((s) => s.outputs.map((f) => ({ name: `output of ${s.id}: ${f}`, value: `\${steps.${s.id}.output.${f}}` }))),
    ];
    const wire = async (field: string, fieldSchema: JsonSchema | undefined, required: boolean): Promise<unknown> => {
      const choice = await select<string>({
        message: `${field}${required ? '' : ' (optional)'}: ${typeOf(fieldSchema)}${fieldSchema?.description ? `, ${fieldSchema.description}` : ''}`,
        choices: [
          ...sources.map((s) => ({ name: s.name, value: s.value })),
          { name: 'type a value', value: '\u0000value' },
          ...(required ? [] : [{ name: 'leave it unset', value: '\u0000unset' }]),
        ],
      });
      if (choice === '\u0000unset') return undefined;
      if (choice !== '\u0000value') return choice;
      return literal(await input({ message: `${field} =`, required }));
    };
    if (kind === 'approval') {
      say('4/7  Who approves, and what they see');
      body.summary = await input({
        message: 'What the approvers are asked (templates such as ${input.amount} work)',
        default: sources[0] ? `Approve ${sources[0].value}?` : 'Approve?',
        required: true,
      });
      const principals = (await input({ message: 'Approvers by name, comma-separated (empty for none)', default: '' })).split(',').map((s) => s.trim()).filter(Boolean);
      const groups = (await input({ message: 'Approver groups, comma-separated (empty for none)', default: principals.length ? '' : 'approvers' })).split(',').map((s) => s.trim()).filter(Boolean);
      body.approvers = { ...(principals.length ? { principals } : {}), ...(groups.length ? { groups } : {}) };
      const quorum = await number({ message: 'How many must approve?', default: 1, min: 1, max: 100, required: true });
      if (quorum && quorum > 1) body.quorum = quorum;
    } else if (kind === 'agent') {
      say('4/7  Data flow');
      const value = await wire('the agent\'s input', undefined, true);
      body.inputs = typeof value === 'string' && value.startsWith('${') ? { task: value } : value;
    } else {
      say('4/7  Data flow');
      const fields = fieldsOf(schema);
      const inputs: Record<string, unknown> = {};
      for (const field of fields) {
        if (secretInputs.includes(field)) {
          // Secret inputs are references, never values (docs/integrations.md#secrets).
          const secret = await input({ message: `${field} is secret: the name of the secret (read from SECRET_<NAME>)`, required: schema?.required?.includes(field) ?? false });
          if (secret) inputs[field] = { secret };
          continue;
        }
        const value = await wire(field, schema?.properties?.[field], schema?.required?.includes(field) ?? false);
        if (value !== undefined) inputs[field] = value;
      }
      if (fields.length === 0) {
        // An open schema (any input): offer the data flow as one field.
        const more = await confirm({ message: 'This step takes any input. Pass it something?', default: sources.length > 0 });
        if (more) {
          const field = await input({ message: 'Field name', default: 'value', required: true });
          inputs[field] = await wire(field, undefined, true);
        }
      }
      if (Object.keys(inputs).length > 0) body.inputs = inputs;
    }

    if (kind !== 'approval' && outputs.length === 0) {
      // The output schema names no fields: the author declares the ones later steps will read.
      const declared = (await input({ message: 'Output fields later steps will read, comma-separated (empty for none)', default: '' }))
        .split(',')
        .map((f) => f.trim())
        .filter(Boolean);
      if (declared.length > 0) {
        outputs = declared;
        body.outputs = declared;
      }
    }

    // 5. Failure strategy
    say('5/7  If this step fails');
    const strategy = await select<'halt' | 'retry' | 'skip'>({
      message: 'Then',
      choices: [
        { name: 'stop the run (halt)', value: 'halt', description: kind === 'approval' ? 'a rejection fails the run' : 'after the step\'s own retries (3 attempts for activity steps)' },
        { name: 'retry with backoff', value: 'retry' },
        { name: 'skip it and go on', value: 'skip', description: 'later steps see no output from it' },
      ],
    });
    if (strategy === 'retry') {
      const maxAttempts = await number({ message: 'Attempts in all (1-10)', default: 3, min: 1, max: 10, required: true });
      const backoff = await select({ message: 'Backoff', choices: ['exponential', 'linear', 'fixed'].map((b) => ({ name: b, value: b })) });
      errorPolicies[id] = { strategy: 'retry', max_attempts: maxAttempts, backoff };
    } else if (strategy === 'skip') {
      errorPolicies[id] = { strategy: 'skip', continue_on_error: true };
    }
    steps.push({ id, kind, outputs, body: { id, ...body } });
  }

  const definition: Record<string, unknown> = {
    name,
    version,
    description,
    ...(lane && lane !== catalog.defaultLane ? { lane } : {}),
    steps: steps.map((s) => s.body),
    ...(Object.keys(errorPolicies).length ? { error_handling: { default: 'halt', per_step: errorPolicies } } : {}),
  };

  // 6. Review: the JSON, checked by the server (the catalog, lanes, references)
  say('\n6/7  Review');
  printJson(io, definition);
  const { body: verdict } = await api.request<{ valid: boolean; errors: Array<{ path: string; message: string }> }>('/v1/definitions/validate', { json: definition });
  if (verdict.valid) say('The server validated it: no problems.');
  else {
    say(`The server found ${verdict.errors.length} problem(s):`);
    for (const e of verdict.errors) say(`  ${e.path || '(document)'}: ${e.message}`);
    if (!(await confirm({ message: 'Save it anyway, to fix by hand?', default: false }))) return EXIT.failed;
  }

  // 7. Save, and optionally register
  say('\n7/7  Save');
  let file = resolve(io.cwd, options.out ?? (await input({ message: 'Save to', default: `${slug(name)}.json` })));
  while (existsSync(file) && !(await confirm({ message: `${file} exists. Overwrite it?`, default: false }))) {
    file = resolve(io.cwd, await input({ message: 'Save to', default: `${slug(name)}-${version}.json` }));
  }
  writeFileSync(file, `${JSON.stringify(definition, null, 2)}\n`);
  say(`Saved ${file}`);
  if (verdict.valid && (await confirm({ message: 'Register it on the platform now?', default: true }))) {
    const { status, body } = await api.request('/v1/definitions', { json: definition });
    say(`${status === 201 ? 'Registered' : 'Already registered'} ${body.name}@${body.version}. Run it: workflow run ${JSON.stringify(body.name)} --follow${inputFields.length ? ` --input '{${inputFields.map((f) => `"${f}": …`).join(', ')}}'` : ''}`);
  }
  return verdict.valid ? EXIT.ok : EXIT.failed;
}
