#!/usr/bin/env node
// The `workflow` command (package.json "bin"): loads the TypeScript CLI through tsx, from any directory.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('./workflow/main.ts');
process.exitCode = await main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env, cwd: process.cwd() });
