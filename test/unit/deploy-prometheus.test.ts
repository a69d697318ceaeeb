import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { OBSERVED_SERIES } from '../../api/metrics-observers.ts';
import { installPrometheus } from '../../common/metrics.ts';
import { apiMetrics, runMetrics, stepMetrics } from '../../common/metrics-platform.ts';
import { modelMetrics } from '../../common/metrics.ts';

const read = (name: string) => parse(readFileSync(fileURLToPath(new URL(`../../deploy/prometheus/${name}`, import.meta.url)), 'utf8'));

/** PromQL words that are not metric names: functions, aggregations, keywords and the labels matched on. */
const PROMQL = new Set([
  'sum', 'max', 'min', 'avg', 'count', 'by', 'without', 'on', 'ignoring', 'and', 'or', 'unless', 'rate', 'increase', 'irate',
  'histogram_quantile', 'le', 'bool', 'offset', 'group_left', 'group_right',
]);

/** Every series name the platform's instruments produce, as Prometheus serialises them (one point recorded on each). */
async function registeredSeries(): Promise<Set<string>> {
  const endpoint = await installPrometheus({ METRICS_ENABLED: true });
  assert.ok(endpoint);
  const labels = {};
  const sets = [runMetrics(), stepMetrics(), apiMetrics(), modelMetrics()];
  for (const set of sets) {
    for (const instrument of Object.values(set) as Array<{ add?: (v: number, a: object) => void; record?: (v: number, a: object) => void }>) {
      if (instrument.add) instrument.add(1, labels);
      else instrument.record?.(1, labels);
    }
  }
  const names = new Set<string>();
  for (const line of (await endpoint.text()).split('\n')) {
    const match = /^# TYPE (\S+) (counter|histogram|gauge)/.exec(line);
    if (!match) continue;
    const [, name, type] = match;
    if (type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(`${name}${s}`);
    else names.add(name!);
  }
  // The API's observed series need Temporal to report a value; their names are fixed constants.
  for (const name of OBSERVED_SERIES) names.add(name.includes('_fires') ? `${name}_total` : name);
  names.add('up');
  return names;
}

test('deploy/prometheus: the scrape config names both jobs and loads the rules', () => {
  const config = read('prometheus.yml');
  assert.deepEqual(config.rule_files, ['alerts.yml']);
  assert.deepEqual(config.scrape_configs.map((j: any) => [j.job_name, j.metrics_path]), [
    ['workflow-api', '/metrics'],
    ['workflow-workers', '/metrics'],
  ]);
  assert.ok(config.scrape_configs[1].static_configs[0].targets.every((t: string) => t.endsWith(':9464')), 'workers on METRICS_PORT 9464');
});

test('deploy/prometheus: every metric an alert rule uses is one the platform registers; the three seed-003 SLOs have rules', async () => {
  const rules = read('alerts.yml').groups.flatMap((g: any) => g.rules);
  const known = await registeredSeries();
  assert.ok(known.has('workflow_runs_failed_total') && known.has('workflow_queue_wait_seconds_bucket'), [...known].join(' '));
  for (const rule of rules) {
    assert.ok(rule.alert && rule.expr && rule.labels?.severity && rule.annotations?.summary, `${rule.alert}: alert, expr, severity, summary`);
    // Strip label matchers, strings, durations and numbers; what is left are functions and metric names.
    const bare = String(rule.expr).replace(/\{[^}]*\}/g, ' ').replace(/"[^"]*"/g, ' ').replace(/\[[^\]]*\]/g, ' ').replace(/\b\d+(\.\d+)?\b/g, ' ');
    const words = [...bare.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)].map((m) => m[0]).filter((w) => !PROMQL.has(w));
    assert.ok(words.length > 0, `${rule.alert} names a metric`);
    // Label names in by/on clauses are stripped with their parentheses' content only when they follow by/on.
    const byLabels = [...String(rule.expr).matchAll(/\b(?:by|on)\s*\(([^)]*)\)/g)].flatMap((m) => m[1]!.split(',').map((l) => l.trim()));
    for (const word of words.filter((w) => !byLabels.includes(w))) assert.ok(known.has(word), `${rule.alert}: ${word} is not a registered series`);
  }
  const exprs = rules.map((r: any) => String(r.expr)).join('\n');
  assert.match(exprs, /workflow_runs_failed_total\{lane="prod-critical"\}\[24h\][\s\S]*< 0\.98/);
  assert.match(exprs, /workflow_queue_wait_seconds_bucket\{lane="prod-critical"[^}]*\}[\s\S]*> 30/);
  assert.match(exprs, /workflow_queue_wait_seconds_bucket\{priority="urgent"[^}]*\}[\s\S]*> 10/);
});
