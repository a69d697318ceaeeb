// @ts-check
import tseslint from 'typescript-eslint';

const NODE_BUILTINS = [
  'assert', 'buffer', 'child_process', 'cluster', 'crypto', 'dgram', 'dns', 'events', 'fs', 'fs/promises', 'http', 'http2',
  'https', 'net', 'os', 'path', 'perf_hooks', 'process', 'readline', 'stream', 'timers', 'tls', 'url', 'util', 'v8', 'vm',
  'worker_threads', 'zlib',
];

/**
 * interpreter/ and workflows/ run inside Temporal's deterministic workflow sandbox: no Node
 * built-ins, no I/O libraries, no clocks or randomness (invariant 2). Activity modules may be
 * imported for their types only.
 */
const deterministic = {
  files: ['interpreter/**/*.ts', 'workflows/**/*.ts'],
  rules: {
    '@typescript-eslint/no-restricted-imports': [
      'error',
      {
        paths: [
          ...NODE_BUILTINS.map((name) => ({ name, message: 'Node built-ins are not allowed in deterministic workflow code.' })),
          { name: 'uuid', importNames: ['v1', 'v4', 'v6', 'v7', 'v1ToV6', 'v6ToV1'], message: 'No clocks or randomness in deterministic code: only name-based ids (v5).' },
          { name: '@noble/hashes/utils', importNames: ['randomBytes'], message: 'No randomness in deterministic code: hashes only.' },
          { name: '@noble/hashes/crypto', message: 'No randomness in deterministic code: hashes only.' },
        ],
        patterns: [
          { group: ['node:*'], message: 'Node built-ins are not allowed in deterministic workflow code.' },
          {
            group: ['pg', 'pino', 'express', 'undici', '@temporalio/client', '@temporalio/worker', '@temporalio/activity', '@electric-sql/*'],
            message: 'I/O libraries are not allowed in deterministic workflow code; call an activity.',
          },
          { group: ['**/activities/**', '**/api/**', '**/workers/**', '**/embedded/**', '**/cli/**'], allowTypeImports: true, message: 'Workflow code may import activity and service modules for types only.' },
          {
            group: ['**/common/*', '!**/common/constants.ts', '!**/common/search-attributes.ts', '!**/common/contracts'],
            message: 'Only common/constants.ts, common/search-attributes.ts and common/contracts/ are sandbox-safe.',
          },
        ],
      },
    ],
    'no-restricted-properties': [
      'error',
      { object: 'Date', property: 'now', message: 'No clocks in deterministic code.' },
      { object: 'Math', property: 'random', message: 'No randomness in deterministic code.' },
      { object: 'process', property: 'env', message: 'Workflow code never reads configuration.' },
    ],
    'no-restricted-globals': [
      'error',
      { name: 'process', message: 'No process access in deterministic code.' },
      { name: 'fetch', message: 'No I/O in deterministic code; call an activity.' },
      { name: 'Buffer', message: 'No Node built-ins in deterministic code.' },
      { name: 'require', message: 'No dynamic loading in deterministic code.' },
    ],
    'no-restricted-syntax': ['error', { selector: "NewExpression[callee.name='Date'][arguments.length=0]", message: 'No clocks in deterministic code.' }],
  },
};

/**
 * The layers, lowest first: interpreter/ ← common/contracts/ ← activities/ ← workflows/ ← api/, cli/
 * (workers/ and embedded/ wire them up). A module imports only from its own layer and those below,
 * types included: a contract two layers share lives below both. Uses the core rule, so that it
 * adds to the determinism wall's (typescript-eslint) one instead of replacing it.
 */
const ABOVE = {
  interpreter: ['activities', 'workflows', 'api', 'cli', 'workers', 'embedded', 'bench'],
  'common/contracts': ['activities', 'workflows', 'api', 'cli', 'workers', 'embedded', 'bench'],
  activities: ['workflows', 'api', 'cli', 'workers', 'embedded', 'bench'],
  workflows: ['api', 'cli', 'workers', 'embedded', 'bench'],
  api: ['cli', 'bench'],
};
const layers = Object.entries(ABOVE).map(([folder, above]) => ({
  files: [`${folder}/**/*.ts`],
  rules: {
    'no-restricted-imports': [
      'error',
      { patterns: [{ group: above.map((layer) => `**/${layer}/**`), message: `Upward import: ${folder}/ sits below ${above.join(', ')}; move the shared contract down (e.g. common/contracts/).` }] },
    ],
  },
}));

export default tseslint.config(
  { ignores: ['node_modules/**', '.data/**', 'dist/**', 'test/fixtures/**', 'scratch/**'] },
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    // The lint rules' own test lints probe files that exist only in memory.
    languageOptions: { parserOptions: { projectService: { allowDefaultProject: ['*/lint-probe.ts'] }, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': [
        'error',
        { allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['test', 'describe', 'it', 'suite', 'before', 'after', 'beforeEach', 'afterEach'] }] },
      ],
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false } }],
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  deterministic,
  ...layers,
);
