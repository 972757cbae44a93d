import type { PreparationStep, ProgressStep, SessionStatus, SessionView } from '@berth/protocol';
import type { ServerContext } from '../context';
import type { SessionPatch, SessionRecord } from '../store/store';
import { redactUrlCredentials } from '../util/redact';
import { changesView } from '../changes/checkpoints';

/** Changes a session's status and tells connected clients (a volatile `status` event). */
export async function setStatus(
  ctx: ServerContext,
  sessionId: string,
  status: SessionStatus,
  step: ProgressStep | null,
  patch: SessionPatch = {},
): Promise<void> {
  await ctx.store.updateSession(sessionId, { ...patch, status, step });
  ctx.events.broadcast(sessionId, 'status', { status, step });
}

/**
 * What the API shows of a session: never its owner's secrets (credentials in the repo URL).
 * `order` is the provider's step order (`stepOrder`), sent so clients lay out the step list like the pipeline.
 */
export function toView(s: SessionRecord, order?: readonly { name: PreparationStep }[]): SessionView {
  return {
    id: s.id,
    repo: { url: redactUrlCredentials(s.repoUrl), ...(s.repoBranch ? { branch: s.repoBranch } : {}) },
    ...(s.prompt !== null ? { prompt: s.prompt } : {}),
    setup: s.setup,
    autoInitiate: s.autoInitiate,
    status: s.status,
    step: s.step,
    createdAt: s.createdAt,
    updatedAt: s.updatedAt,
    preparedAt: s.preparedAt,
    initiatedAt: s.initiatedAt,
    lastError: s.lastError,
    lastEventId: s.lastEventId,
    ...(order ? { steps: order.map((step) => step.name) } : {}),
    changes: changesView(s),
  };
}
