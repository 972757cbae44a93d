import type { PreparationStep, SessionView } from '@berth/protocol';
import type { SessionRecord } from '../store/store';
import { redactUrlCredentials } from '@berth/protocol';
import { changesView } from '../changes/checkpoints';

/**
 * What the API shows of a session: never its owner's secrets (credentials in the repo URL).
 * `order` is the provider's step order (`stepOrder`), sent so clients lay out the step list like the pipeline.
 */
export function toView(s: SessionRecord, order?: readonly { name: PreparationStep }[]): SessionView {
  return {
    id: s.id,
    repo: { url: redactUrlCredentials(s.repoUrl), ...(s.repoBranch ? { branch: s.repoBranch } : {}) },
    ...(s.prompt !== null ? { prompt: s.prompt } : {}),
    ...(s.devcontainer ? { devcontainer: s.devcontainer } : {}),
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
    queue: s.queue ?? [],
    ...(s.model ? { model: s.model } : {}),
    ...(s.usage ? { usage: s.usage } : {}),
  };
}
