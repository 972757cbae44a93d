// What this workspace did with each session's work: applied (as a branch or onto the working tree)
// and the last push's answer (its pull request page). Kept in the workspace state, so that Delete
// can say what would be lost. No vscode import (a Memento is two methods).
import { AppliedWork, PushResponse, type ChangesSummary, type CheckpointInfo } from '@berth/protocol';
import { z } from 'zod';

export interface Memento {
  get<T>(key: string): T | undefined;
  update(key: string, value: unknown): Thenable<void>;
}

const APPLIED_KEY = 'berth.applied';
const PUSHED_KEY = 'berth.pushed';

export const PushRecord = PushResponse.extend({ at: z.string() });
export type PushRecord = z.infer<typeof PushRecord>;

export class Deliveries {
  constructor(private readonly memento: Memento) {}

  applied(sessionId: string): AppliedWork | null {
    const parsed = AppliedWork.safeParse(this.read(APPLIED_KEY)[sessionId]);
    return parsed.success ? parsed.data : null;
  }

  async setApplied(sessionId: string, work: AppliedWork): Promise<void> {
    await this.memento.update(APPLIED_KEY, { ...this.read(APPLIED_KEY), [sessionId]: work });
  }

  pushed(sessionId: string): PushRecord | null {
    const parsed = PushRecord.safeParse(this.read(PUSHED_KEY)[sessionId]);
    return parsed.success ? parsed.data : null;
  }

  async setPushed(sessionId: string, push: PushRecord): Promise<void> {
    await this.memento.update(PUSHED_KEY, { ...this.read(PUSHED_KEY), [sessionId]: push });
  }

  async forget(sessionId: string): Promise<void> {
    for (const key of [APPLIED_KEY, PUSHED_KEY]) {
      const { [sessionId]: _gone, ...rest } = this.read(key);
      await this.memento.update(key, rest);
    }
  }

  private read(key: string): Record<string, unknown> {
    const value = this.memento.get<unknown>(key);
    return value && typeof value === 'object' ? (value as Record<string, unknown>) : {};
  }
}

/**
 * The newest checkpoint that left the sandbox (pushed, or applied in this workspace), by the order
 * of the session's checkpoints; null when nothing did. Both heads are checkpoints of one chain.
 */
export function lastDelivered(
  changes: Pick<ChangesSummary, 'base' | 'head' | 'pushed'>,
  applied: Pick<AppliedWork, 'head'> | null,
  checkpoints: readonly Pick<CheckpointInfo, 'sha'>[],
): string | null {
  const candidates = [changes.pushed?.head, applied?.head].filter((h): h is string => !!h);
  if (candidates.includes(changes.head)) return changes.head;
  const order = checkpoints.map((c) => c.sha);
  let best: string | null = null;
  let bestAt = -1;
  for (const head of candidates) {
    const at = order.indexOf(head);
    if (at > bestAt) {
      best = head;
      bestAt = at;
    }
  }
  return best;
}
