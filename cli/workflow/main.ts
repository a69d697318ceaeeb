import { existsSync, writeFileSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { ApiClient, CliError, EXIT, resolveConnection, seg } from './client.ts';
import { parseInput, readDefinitionFile, validateOffline } from './definition-file.ts';
import { follow } from './follow.ts';
import { duration, printJson, printTable, since, type Io } from './output.ts';
import { runWizard } from './wizard.ts';
import { addLogsCommand } from './logs.ts';
import { addOperateCommands } from './operate.ts';

/**
 * `workflow`: the product teams' CLI (seed 002). Every command talks to the REST API only; `--json`
 * prints the API's answer for scripts, otherwise tables. Exit codes are in client.ts (EXIT).
 */

interface GlobalOptions {
  url?: string;
  key?: string;
  profile?: string;
  json?: boolean;
}

/** Builds the program; `io` is where it writes (tests pass their own). */
export function buildProgram(io: Io, setExit: (code: number) => void): Command {
  const program = new Command()
    .name('workflow')
    .description('Define, run and watch durable workflows through the platform\'s REST API.')
    .option('--url <url>', 'API URL (env WORKFLOW_API_URL; default http://127.0.0.1:8080)')
    .option('--key <key>', 'API key (env WORKFLOW_API_KEY; default: the embedded platform\'s .data/dev-api-key)')
    .option('--profile <name>', 'profile from the profile file (env WORKFLOW_PROFILE; file WORKFLOW_CONFIG or ~/.config/workflow/config.json)')
    .option('--json', 'print JSON (the API\'s answers; JSON lines when following)')
    .showHelpAfterError()
    .configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stderr.write(s) })
    .exitOverride();

  const ctx = (command: Command) => {
    const options = command.optsWithGlobals<GlobalOptions>();
    const client = (): ApiClient => new ApiClient(resolveConnection(options, io.env, io.cwd));
    return { json: Boolean(options.json), client };
  };

  program
    .command('list')
    .description('List the registered workflow definitions')
    .action(async (_o, command: Command) => {
      const { json, client } = ctx(command);
      const body = await client().get('/v1/definitions');
      if (json) return printJson(io, body);
      printTable(io, ['NAME', 'LATEST', 'VERSIONS', 'LANE', 'DESCRIPTION'], body.definitions.map((d: any) => [d.name, d.latestVersion, d.versions.length, d.lane, (d.description ?? '').slice(0, 60)]));
    });

  program
    .command('create')
    .description('The wizard: purpose, steps, skills and agents from the live catalog, data flow, failure strategies, review, save (and register)')
    .option('--out <file>', 'where to save the definition (asked otherwise)')
    .action(async (o: { out?: string }, command: Command) => {
      const { json, client } = ctx(command);
      setExit(await runWizard(client(), io, { ...(o.out ? { out: o.out } : {}), json }));
    });

  program
    .command('runs')
    .description('List runs, newest first')
    .option('--definition <name>', 'only runs of this definition')
    .addOption(new Option('--status <status>', 'only runs in this status').choices(['running', 'completed', 'failed', 'cancelled', 'terminated', 'timed_out']))
    .option('--limit <n>', 'at most this many (1-1000)', '20')
    .action(async (o: { definition?: string; status?: string; limit: string }, command: Command) => {
      const { json, client } = ctx(command);
      const query = new URLSearchParams({ limit: o.limit, ...(o.definition ? { definition: o.definition } : {}), ...(o.status ? { status: o.status } : {}) });
      const body = await client().get(`/v1/runs?${query}`);
      if (json) return printJson(io, body);
      printTable(io, ['RUN', 'DEFINITION', 'STATUS', 'STARTED', 'TOOK'], body.runs.map((r: any) => [r.runId, `${r.definition.name}@${r.definition.version}`, r.status, r.startedAt, since(r.startedAt, r.closedAt)]));
    });

  program
    .command('validate')
    .description('Check a definition file offline with the API\'s own validator; --remote asks the server (skills, agents, lanes too)')
    .argument('<file>', 'definition file (JSON, or YAML by extension; - for stdin)')
    .option('--remote', 'validate on the server, against its catalog and registered definitions')
    .action(async (file: string, o: { remote?: boolean }, command: Command) => {
      const { json, client } = ctx(command);
      const document = readDefinitionFile(file);
      const result = o.remote ? (await client().request('/v1/definitions/validate', { json: document })).body : validateOffline(document);
      if (json) printJson(io, result);
      else if (result.valid) {
        io.stdout.write(`${file}: valid${o.remote ? '' : ' (offline: names of skills, agents, models, lanes and sub_workflows are checked by `register` or `validate --remote`)'}\n`);
      } else {
        io.stdout.write(`${file}: ${result.errors.length} problem(s)\n`);
        for (const e of result.errors) io.stdout.write(`  ${e.path || '(document)'}: ${e.message}${e.stepId ? `  [step ${e.stepId}]` : ''}\n`);
      }
      setExit(result.valid ? EXIT.ok : EXIT.failed);
    });

  program
    .command('register')
    .description('Register a definition (a new version; the same content again is a no-op)')
    .argument('<file>', 'definition file (JSON, or YAML by extension; - for stdin)')
    .action(async (file: string, _o, command: Command) => {
      const { json, client } = ctx(command);
      const { status, body } = await client().request('/v1/definitions', { json: readDefinitionFile(file) });
      if (json) return printJson(io, body);
      io.stdout.write(`${status === 201 ? 'registered' : 'already registered (same content)'} ${body.name}@${body.version}  lane ${body.lane}  hash ${body.hash.slice(0, 12)}\n`);
      if (body.schedules?.length) io.stdout.write(`schedules: ${body.schedules.join(', ')}\n`);
    });

  program
    .command('run')
    .description('Start a run of a definition (its newest active version unless --version)')
    .argument('<name>', 'definition name')
    .option('--version <version>', 'a registered version')
    .option('--input <json|file>', 'the run\'s input: JSON text, or a file holding JSON/YAML')
    .option('--idempotency-key <key>', 'the same key returns the same run')
    .option('--follow', 'show progress until the run ends; exits 1 unless it completed (Ctrl-C detaches)')
    .action(async (name: string, o: { version?: string; input?: string; idempotencyKey?: string; follow?: boolean }, command: Command) => {
      const { json, client } = ctx(command);
      let input: unknown;
      try {
        input = parseInput(o.input);
      } catch (error) {
        throw new CliError(`--input is neither JSON nor a readable file: ${(error as Error).message}`, EXIT.usage);
      }
      const api = client();
      const { status, body } = await api.request('/v1/runs', {
        json: { definition: name, ...(o.version ? { version: o.version } : {}), ...(input === undefined ? {} : { input }), ...(o.idempotencyKey ? { idempotencyKey: o.idempotencyKey } : {}) },
      });
      if (json && !o.follow) return printJson(io, body);
      if (!json) {
        io.stderr.write(`${status === 201 ? 'started' : 'existing run (same idempotency key)'} ${body.runId}\n  Temporal Web: ${body.links.temporalUi}\n`);
        if (!o.follow) io.stdout.write(`${body.runId}\n`);
      }
      if (o.follow) setExit((await follow(api, body.runId, io, { json })).code);
    });

  program
    .command('status')
    .description('Show a run: status, steps, output or error; exits 1 if it failed or was cancelled')
    .argument('<runId>')
    .option('--follow', 'show progress until the run ends (Ctrl-C detaches)')
    .action(async (runId: string, o: { follow?: boolean }, command: Command) => {
      const { json, client } = ctx(command);
      const api = client();
      if (o.follow) {
        setExit((await follow(api, runId, io, { json })).code);
        return;
      }
      const run = await api.get(`/v1/runs/${seg(runId)}`);
      setExit(run.status === 'running' || run.status === 'completed' ? EXIT.ok : EXIT.failed);
      if (json) return printJson(io, run);
      io.stdout.write(
        [
          `run         ${run.runId}`,
          `definition  ${run.definition.name}@${run.definition.version}  (lane ${run.lane ?? '?'})`,
          `status      ${run.status}${run.currentStep ? `  at ${run.currentStep}` : ''}`,
          `started     ${run.startedAt ?? ''}${run.startedBy ? ` by ${run.startedBy}` : ''}`,
          ...(run.closedAt ? [`closed      ${run.closedAt}  (${since(run.startedAt, run.closedAt)})`] : [`running for ${since(run.startedAt)}`]),
          ...(run.error ? [`error       ${run.error.message}${run.error.type ? `  [${run.error.type}]` : ''}`] : []),
          `Temporal    ${run.links.temporalUi}`,
          '',
        ].join('\n'),
      );
      if (run.steps) {
        printTable(io, ['STEP', 'STATUS', 'DETAIL'], run.steps.map((s: any) => [s.id, s.status, s.error ? s.error.message.slice(0, 80) : s.branch ? `branch ${s.branch}` : s.total !== undefined ? `${s.done ?? 0}/${s.total}` : '']));
      }
      for (const a of (run.approvals ?? []).filter((x: any) => x.status === 'pending')) {
        io.stdout.write(`\nwaiting for approval: ${a.stepPath}: ${a.summary}\n  workflow approve ${run.runId} ${a.stepPath}   |   workflow reject ${run.runId} ${a.stepPath}\n`);
      }
      if (run.output !== undefined) io.stdout.write(`\noutput\n${JSON.stringify(run.output, null, 2)}\n`);
    });

  program
    .command('stop')
    .description('Cancel a running run (its compensations run; the run ends cancelled)')
    .argument('<runId>')
    .action(async (runId: string, _o, command: Command) => {
      const { json, client } = ctx(command);
      const { body } = await client().request(`/v1/runs/${seg(runId)}/cancel`, { method: 'POST' });
      if (json) return printJson(io, body);
      io.stdout.write(`cancelling ${runId}\n`);
    });

  addLogsCommand(program, ctx, io);

  for (const decision of ['approve', 'reject'] as const) {
    program
      .command(decision)
      .description(`${decision === 'approve' ? 'Approve' : 'Reject'} an approval step of a run (as the key's principal)`)
      .argument('<runId>')
      .argument('<step>', 'the step id (or its path inside loops)')
      .option('--comment <text>', 'kept in the audit trail')
      .action(async (runId: string, step: string, o: { comment?: string }, command: Command) => {
        const { json, client } = ctx(command);
        const { body } = await client().request(`/v1/runs/${seg(runId)}/approvals/${seg(step)}`, { json: { decision, ...(o.comment ? { comment: o.comment } : {}) } });
        if (json) return printJson(io, body);
        io.stdout.write(`${decision === 'approve' ? 'approved' : 'rejected'} ${body.stepPath} of ${runId}${body.duplicate ? ' (already recorded)' : ''}: ${body.status} (${body.approvals}/${body.quorum})\n`);
      });
  }

  program
    .command('inbox')
    .description('Approvals waiting for you (the key\'s principal and groups)')
    .action(async (_o, command: Command) => {
      const { json, client } = ctx(command);
      const body = await client().get('/v1/approvals');
      if (json) return printJson(io, body);
      printTable(io, ['RUN', 'STEP', 'DEFINITION', 'SUMMARY', 'APPROVALS', 'WAITING', 'DEADLINE'], body.approvals.map((a: any) => [a.runId, a.stepPath, `${a.definition.name}@${a.definition.version}`, a.summary.slice(0, 50), `${a.approvals}/${a.quorum}`, since(a.requestedAt), a.deadline]));
    });

  program
    .command('history')
    .description('The versions of a definition, newest first, with their status')
    .argument('<name>')
    .action(async (name: string, _o, command: Command) => {
      const { json, client } = ctx(command);
      const api = client();
      const latest = await api.get(`/v1/definitions/${seg(name)}`);
      const versions = await Promise.all((latest.versions as string[]).map((v) => api.get(`/v1/definitions/${seg(name)}/versions/${seg(v)}`)));
      if (json) return printJson(io, { name, versions: versions.map(({ definition: _d, ...v }) => v) });
      printTable(io, ['VERSION', 'STATUS', 'CREATED', 'BY', 'HASH', 'DESCRIPTION'], versions.map((v) => [v.version, v.status, v.createdAt, v.createdBy, v.hash.slice(0, 12), (v.description ?? '').slice(0, 50)]));
    });

  program
    .command('diff')
    .description('What changed between two versions (RFC 6902 JSON Patch)')
    .argument('<name>')
    .argument('<from>', 'version')
    .argument('<to>', 'version')
    .action(async (name: string, from: string, to: string, _o, command: Command) => {
      const { json, client } = ctx(command);
      const body = await client().get(`/v1/definitions/${seg(name)}/diff?${new URLSearchParams({ from, to })}`);
      if (json) return printJson(io, body);
      if (body.patch.length === 0) io.stdout.write(`${name}: ${from} and ${to} have the same content\n`);
      for (const op of body.patch) {
        const sign = op.op === 'add' ? '+' : op.op === 'remove' ? '-' : '~';
        io.stdout.write(`${sign} ${op.op.padEnd(7)} ${op.path}${op.from ? ` (from ${op.from})` : ''}${op.value === undefined ? '' : `  ${JSON.stringify(op.value)}`}\n`);
      }
    });

  program
    .command('graph')
    .description('A definition version as a Mermaid flowchart (the latest without a version), or a run\'s with step statuses (--run)')
    .argument('[name]', 'definition name')
    .argument('[version]', 'version (default: the latest)')
    .option('--run <runId>', 'the diagram of a run, coloured by step status')
    .action(async (name: string | undefined, version: string | undefined, o: { run?: string }, command: Command) => {
      const { json, client } = ctx(command);
      const api = client();
      if (!o.run && !name) throw new CliError('give a definition name, or --run <runId>', EXIT.usage);
      let body: any;
      if (o.run) body = await api.get(`/v1/runs/${seg(o.run)}/graph`);
      else {
        const v = version ?? (await api.get(`/v1/definitions/${seg(name ?? '')}`)).version;
        body = await api.get(`/v1/definitions/${seg(name ?? '')}/versions/${seg(v)}/graph`);
      }
      if (json) return printJson(io, body);
      io.stdout.write(`${body.mermaid.trimEnd()}\n`);
    });

  program
    .command('promote')
    .description('The promotion gate (seed 003 §5): run <candidate> and production on a battery; promote, or keep it experimental with the reasons; exits 1 unless promoted')
    .argument('<name>', 'definition name')
    .argument('<candidate>', 'the version to promote')
    .requiredOption('--battery <file>', 'the battery (JSON/YAML): a list of {class, input, name?}, or {battery, judge?, budget?, timeoutSeconds?}')
    .option('--judge <step[:field]>', 'the step whose output scores quality (field default: score)')
    .option('--max-tokens-per-run <n>', 'budget: mean model tokens per run')
    .option('--max-token-increase <fraction>', 'budget: how much the mean tokens per run may grow over production (0.1 = 10%)')
    .action(async (name: string, candidate: string, o: { battery: string; judge?: string; maxTokensPerRun?: string; maxTokenIncrease?: string }, command: Command) => {
      const { json, client } = ctx(command);
      const file = readDefinitionFile(o.battery);
      const given = (Array.isArray(file) ? { battery: file } : file) as Record<string, unknown>;
      const budget = { ...((given.budget as Record<string, unknown> | undefined) ?? {}) };
      const number = (value: string, flag: string) => {
        const n = Number(value);
        if (!Number.isFinite(n)) throw new CliError(`${flag} is not a number: ${value}`, EXIT.usage);
        return n;
      };
      if (o.maxTokensPerRun !== undefined) budget.maxTokensPerRun = number(o.maxTokensPerRun, '--max-tokens-per-run');
      if (o.maxTokenIncrease !== undefined) budget.maxTokenIncrease = number(o.maxTokenIncrease, '--max-token-increase');
      const [step, field] = (o.judge ?? '').split(':');
      const request = {
        ...given,
        candidate,
        ...(o.judge ? { judge: { step, ...(field ? { field } : {}) } } : {}),
        ...(Object.keys(budget).length > 0 ? { budget } : {}),
      };
      if (!json) io.stderr.write(`running ${name}@${candidate} against production on ${Array.isArray(given.battery) ? given.battery.length : '?'} task(s)...\n`);
      const { body } = await client().request(`/v1/definitions/${seg(name)}/promotions`, { json: request });
      setExit(body.decision.action === 'promoted' ? EXIT.ok : EXIT.failed);
      if (json) return printJson(io, body);
      const m = (side: any) => (side ? `${side.version}: ${side.measures.completed}/${side.measures.runs} completed, p50 ${side.measures.p50Ms} ms, p95 ${side.measures.p95Ms} ms, ${Math.round(side.measures.tokensPerRun)} tokens/run${side.measures.quality === null ? '' : `, quality ${side.measures.quality.toFixed(3)}`}` : 'none in production');
      io.stdout.write(`candidate  ${m(body.candidate)}\nproduction ${m(body.production)}\n`);
      printTable(io, ['CRITERION', 'PASS', 'DETAIL'], body.verdict.criteria.map((c: any) => [c.name, c.judged ? (c.pass ? 'yes' : 'NO') : 'not judged', c.detail]));
      io.stdout.write(body.decision.action === 'promoted' ? `promoted: production is now ${body.decision.production}\n` : `kept experimental; production stays ${body.decision.production ?? '(none)'}\n`);
    });

  program
    .command('rollback')
    .description('Move production back to the version the last promotion replaced, in one call')
    .argument('<name>', 'definition name')
    .option('--reason <text>', 'why (kept in the decision record)')
    .action(async (name: string, o: { reason?: string }, command: Command) => {
      const { json, client } = ctx(command);
      const { body } = await client().request(`/v1/definitions/${seg(name)}/promotions/rollback`, { json: o.reason ? { reason: o.reason } : {} });
      if (json) return printJson(io, body);
      io.stdout.write(`rolled back ${name}: production ${body.previous} -> ${body.production ?? '(none: runs start the highest active version)'}\n`);
    });

  program
    .command('docs')
    .description('The operator doc of a definition version (seed 001\'s template, sections 0-13, TODOs for the owner) as Markdown; the latest version without one')
    .argument('<name>', 'definition name')
    .argument('[version]', 'version (default: the latest)')
    .option('--out <file>', 'write it to this file instead of stdout')
    .action(async (name: string, version: string | undefined, o: { out?: string }, command: Command) => {
      const { client } = ctx(command);
      const api = client();
      const v = version ?? (await api.get(`/v1/definitions/${seg(name)}`)).version;
      const markdown = await api.text(`/v1/definitions/${seg(name)}/versions/${seg(v)}/operator-doc`);
      if (o.out) {
        writeFileSync(o.out, markdown);
        io.stderr.write(`wrote ${o.out} (${name}@${v}; ${(markdown.match(/TODO:/g) ?? []).length} TODO(s) for the owner)\n`);
      } else io.stdout.write(markdown);
    });

  program
    .command('dry-run')
    .description('Run a definition through the real interpreter with every effect mocked, in simulated time: the path, each step, the output, the predicted history; exits 1 unless it completed')
    .argument('<file|name>', 'a definition file (inline, not registered), or the name of a registered definition')
    .option('--version <version>', 'a registered version (default: the highest active one)')
    .option('--input <json|file>', 'the run\'s input: JSON text, or a file holding JSON/YAML')
    .option('--scenario <file>', 'mocks, approvals, events, signal, startedBy (JSON/YAML): see docs/authoring.md')
    .action(async (target: string, o: { version?: string; input?: string; scenario?: string }, command: Command) => {
      const { json, client } = ctx(command);
      let input: unknown;
      try {
        input = parseInput(o.input);
      } catch (error) {
        throw new CliError(`--input is neither JSON nor a readable file: ${(error as Error).message}`, EXIT.usage);
      }
      const scenario = o.scenario === undefined ? {} : readDefinitionFile(o.scenario);
      if (scenario === null || typeof scenario !== 'object' || Array.isArray(scenario)) throw new CliError(`${o.scenario} does not hold an object`, EXIT.usage);
      const isFile = target === '-' || existsSync(target);
      if (isFile && o.version) throw new CliError('--version is for a registered definition, not a file', EXIT.usage);
      const request = {
        ...(scenario as Record<string, unknown>),
        ...(isFile ? { definition: readDefinitionFile(target) } : { name: target, ...(o.version ? { version: o.version } : {}) }),
        ...(input === undefined ? {} : { input }),
      };
      const { body } = await client().request('/v1/definitions/dry-run', { json: request });
      setExit(body.status === 'completed' ? EXIT.ok : EXIT.failed);
      if (json) return printJson(io, body);
      io.stdout.write(`dry run of ${body.definition.name}@${body.definition.version} (${body.definition.source}): ${body.status} after ${duration(body.simulatedSeconds * 1000) || '0 s'} of simulated time\n`);
      io.stdout.write('path:\n');
      for (const p of body.path) io.stdout.write(`  +${duration(p.atSeconds * 1000) || '0 s'}  ${p.run ? `${p.run}/` : ''}${p.step}  (${p.type})\n`);
      printTable(
        io,
        ['STEP', 'TYPE', 'STATUS', 'ANSWER', 'ATTEMPTS', 'OUTPUT'],
        body.steps.map((st: any) => [st.id, st.type, st.status, st.source ?? '', st.attempts ?? '', st.output === undefined ? (st.error ? `${st.error.type}: ${st.error.message}` : '') : JSON.stringify(st.output).slice(0, 60)]),
      );
      for (const a of body.approvals) {
        const decided = a.decisions.map((d: any) => `${d.decision} by ${d.principal}`).join(', ') || (a.timedOut ? 'timed out' : 'none');
        io.stdout.write(`approval ${a.stepPath}: ${a.status} (${decided})${a.refused.length ? `; refused: ${a.refused.map((r: any) => `${r.principal} (${r.code})`).join(', ')}` : ''}\n`);
      }
      if (body.status === 'completed') io.stdout.write(`output: ${JSON.stringify(body.output)}\n`);
      if (body.error) io.stdout.write(`error: ${body.error.type}: ${body.error.message}\n`);
      if (body.blocked) io.stdout.write(`blocked, waiting for: ${body.blocked.waitingFor.join('; ')}\n`);
      io.stdout.write(`predicted history: ${body.predicted.events} events in ${body.predicted.runs} run(s), ${body.predicted.payloadBytes} payload bytes\n`);
      for (const w of body.warnings) io.stderr.write(`warning: ${w}\n`);
    });

  addOperateCommands(program, ctx, io);

  return program;
}

/** Runs the CLI with `argv` (without node and script) and resolves to the exit code. */
export async function main(argv: string[], io: Io): Promise<number> {
  let code: number = EXIT.ok;
  const program = buildProgram(io, (c) => {
    code = c;
  });
  try {
    await program.parseAsync(argv, { from: 'user' });
    return code;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? EXIT.ok : EXIT.usage;
    // Ctrl-C in a prompt of the wizard: nothing was saved.
    if ((error as Error).name === 'ExitPromptError') {
      io.stderr.write('workflow: cancelled; nothing was saved\n');
      return EXIT.detached;
    }
    if (error instanceof CliError) {
      if (argv.includes('--json') && error.problem) printJson(io, error.problem);
      io.stderr.write(`workflow: ${error.message}\n`);
      return error.code;
    }
    io.stderr.write(`workflow: ${(error as Error).stack ?? String(error)}\n`);
    return EXIT.unavailable;
  }
}
