import { walkSteps } from '../interpreter/compile.ts';
import type { ApproverSet, Definition } from '../interpreter/schema.ts';
import type { ApiKeyStore } from './auth.ts';

export interface DefinitionWarning {
  path: string;
  stepId?: string;
  message: string;
}

/**
 * Approval steps nobody can answer today: a group with no member in the tenant's key
 * configuration, or fewer possible approvers than the quorum. Registration still succeeds (keys
 * can be added before a run gets there); validate and register answer these as `warnings`.
 */
export function approverWarnings(definition: Definition, keys: ApiKeyStore, tenant: string): DefinitionWarning[] {
  const warnings: DefinitionWarning[] = [];
  const check = (set: ApproverSet, quorum: number, at: string, stepId: string) => {
    const groups = set.groups ?? [];
    const members = keys.groupMembers(tenant, groups);
    groups.forEach((group, i) => {
      if ((members[group] ?? []).length === 0) {
        warnings.push({
          path: `${at}/groups/${i}`,
          stepId,
          message: `group "${group}" has no members in tenant "${tenant}"'s key configuration (API_KEYS / API_KEYS_FILE): nobody in it can decide`,
        });
      }
    });
    const possible = new Set([...(set.principals ?? []), ...Object.values(members).flat()]);
    if (possible.size < quorum) {
      warnings.push({
        path: at,
        stepId,
        message: `quorum ${quorum} needs ${quorum} distinct approver${quorum === 1 ? "" : "s"} but ${possible.size} can decide today (${[...possible].join(', ') || 'nobody'})`,
      });
    }
  };
  walkSteps(definition.steps, '/steps', (step, pointer) => {
    if (step.type !== 'approval') return;
    check(step.approvers, step.quorum ?? 1, `${pointer}/approvers`, step.id);
    if (step.escalation) check(step.escalation.approvers, step.escalation.quorum ?? 1, `${pointer}/escalation/approvers`, step.id);
  });
  return warnings;
}
