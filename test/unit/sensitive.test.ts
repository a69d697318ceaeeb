import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { SENSITIVE_MASK, Masker } from '../../common/sensitive.ts';
import { validateDefinition, type ValidationContext } from '../../interpreter/validate.ts';
import { dataReads } from '../../interpreter/sensitive.ts';

const ctx: ValidationContext = { skills: new Set(['echo']), integrations: new Set(), agents: new Set(), lanes: ['prod-critical'] };

const base = (extra: Record<string, unknown>, steps: unknown[] = []) => ({
  name: 'kyc',
  version: '1.0.0',
  sensitive: { input: ['/customer/ssn'], steps: { lookup: ['/card'] } },
  steps: [{ id: 'lookup', type: 'skill', skill: 'echo', inputs: { ssn: '${input.customer.ssn}' } }, ...steps],
  ...extra,
});

function problems(definition: unknown) {
  const result = validateDefinition(definition, ctx);
  return result.ok ? [] : result.problems;
}

describe('declared sensitivity: validation', () => {
  test('a definition may mark input pointers and step outputs, and pass them to steps', () => {
    assert.deepEqual(problems(base({}, [{ id: 'ok', type: 'approval', approvers: { principals: ['a'] }, summary: 'Approve ${input.customer.name} (${lookup.amount})' }])), []);
  });

  test('an approval summary reading a sensitive input is refused with its path and the declaration', () => {
    const found = problems(base({}, [{ id: 'check', type: 'approval', approvers: { principals: ['a'] }, summary: 'SSN ${input.customer.ssn}' }]));
    assert.equal(found.length, 1);
    assert.equal(found[0]!.path, '/steps/1/summary');
    assert.match(found[0]!.message, /sensitive input \/customer\/ssn \(declared at \/sensitive\/input\/0\)/);
  });

  test('reading a parent of a sensitive place, a sensitive step output (all spellings), or a failure message copying one is refused', () => {
    const approval = (summary: string) => ({ id: 'check', type: 'approval', approvers: { principals: ['a'] }, summary });
    for (const summary of ['${input.customer}', '${input["customer"]["ssn"]}', '${input}', '${steps.lookup.output.card}', '${lookup.card.number}', '${steps.lookup.output}', '${input.customer[field]}']) {
      const found = problems(base({ context: { mutable: { field: 'x' } } }, [approval(summary)]));
      assert.deepEqual(found.map((p) => p.path), ['/steps/1/summary'], summary);
    }
    const fail = problems(base({}, [{ id: 'stop', type: 'fail', error: 'bad card ${lookup.card}' }]));
    assert.deepEqual(fail.map((p) => p.path), ['/steps/1/error']);
    assert.match(fail[0]!.message, /sensitive output \/card of step "lookup"/);
  });

  test('reads beside a sensitive place, and quoted text, are not refused', () => {
    const approval = (summary: string) => ({ id: 'check', type: 'approval', approvers: { principals: ['a'] }, summary });
    for (const summary of ['${input.customer.name}', '${lookup.amount}', '${"input.customer.ssn"}', 'plain input.customer.ssn text']) {
      assert.deepEqual(problems(base({}, [approval(summary)])), [], summary);
    }
  });

  test('a sensitive step that does not exist, and a malformed pointer, are refused with their paths', () => {
    const found = problems({ ...base({}), sensitive: { input: ['customer'], steps: { nope: ['/x'] } } });
    assert.deepEqual(found.map((p) => p.path).sort(), ['/sensitive/input/0']);
    const missing = problems({ ...base({}), sensitive: { steps: { nope: ['/x'] } } });
    assert.deepEqual(missing.map((p) => p.path), ['/sensitive/steps/nope']);
  });

  test('dataReads finds hyphenated step ids and stops at dynamic keys', () => {
    assert.deepEqual(dataReads('fetch-data.body.ssn == 1 && input.a[0].b', new Set(['fetch-data'])), [
      { root: 'step', stepId: 'fetch-data', segments: ['body', 'ssn'] },
      { root: 'input', segments: ['a', '0', 'b'] },
    ]);
  });
});

describe('declared sensitivity: masking', () => {
  const spec = { input: ['/customer/ssn'], steps: { lookup: ['/card'] } };
  const masker = new Masker(spec, {
    input: { customer: { ssn: '078-05-1120', name: 'Ada' } },
    outputs: { lookup: { card: { number: '4111111111111111', cvc: 123 }, amount: 12 } },
  });

  test('declared places are masked, the rest stays', () => {
    assert.deepEqual(masker.input({ customer: { ssn: '078-05-1120', name: 'Ada' } }), { customer: { ssn: SENSITIVE_MASK, name: 'Ada' } });
    assert.deepEqual(masker.stepOutput('lookup', { card: { number: '4111111111111111' }, amount: 12 }), { card: SENSITIVE_MASK, amount: 12 });
  });

  test('copies of a sensitive value elsewhere are masked too, inside longer strings as well', () => {
    assert.deepEqual(masker.scrub({ echoed: { ssn: '078-05-1120' }, note: 'card 4111111111111111 declined', short: 12 }), {
      echoed: { ssn: SENSITIVE_MASK },
      note: `card ${SENSITIVE_MASK} declined`,
      short: 12,
    });
  });

  test('a definition without a spec masks nothing', () => {
    const none = new Masker(undefined, {});
    assert.equal(none.active, false);
    assert.deepEqual(none.scrub({ a: 'b' }), { a: 'b' });
  });
});
