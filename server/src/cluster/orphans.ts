import type { ServerContext } from '../context';
import type { FailureCode, PersistedEvent } from '@berth/protocol';
import type { SessionRecord } from '../store/store';
import { eventHistory } from '../events/history';

/** Why a session lost its sandbox: its own server restarted, or another instance took over a dead one's. */
export type OrphanCause = 'restart' | 'instance_lost';

const MESSAGES: Record<OrphanCause, { code: FailureCode; turn: string; preparation: string }> = {
  restart: {
    code: 'server_restarted',
    turn: 'the server restarted during this turn; your next message restarts the sandbox',
    preparation: 'preparation was interrupted by a server restart; retry it',
  },
  instance_lost: {
    code: 'instance_lost',
    turn: 'the server instance running this session stopped during this turn; your next message restarts the sandbox',
    preparation: 'the server instance preparing this session stopped; retry it',
  },
};

/**
 * Brings a session whose sandbox is gone (nothing of the process that ran it is alive) back to a
 * consistent state: an open turn is closed with an error, a ready or running session goes to
 * sleep (the next message resumes it anywhere), and a preparation with no job left is failed.
 */
export async function settleOrphan(ctx: ServerContext, session: SessionRecord, cause: OrphanCause): Promise<void> {
  const text = MESSAGES[cause];
  if (session.status === 'preparing') {
    // Its job is claimed again (released, or once its lease expires) and resumes it.
    if ((await ctx.store.activeJobs(session.id)).length > 0) return;
    const error = { code: 'interrupted', message: text.preparation, step: session.step ?? 'failed' } as const;
    await ctx.events.append(session.id, 'error', error);
    await ctx.lifecycle.transition(session.id, 'failed', { step: 'failed', error, patch: { sandbox: null, instance: null } });
    return;
  }
  if (session.status === 'running') {
    const open = await openTurn(eventHistory(ctx.store, session.id));
    if (open) {
      await ctx.events.append(session.id, 'error', { code: text.code, message: text.turn, turnId: open });
      await ctx.events.append(session.id, 'turn_complete', { turnId: open, status: 'failed', exitCode: null, durationMs: 0 });
    }
  }
  await ctx.lifecycle.transition(session.id, 'sleeping', { patch: { sandbox: null, instance: null } });
}

/** The turn that has a user message but no completion yet, if any. */
async function openTurn(events: AsyncIterable<PersistedEvent>): Promise<string | null> {
  const open = new Set<string>();
  for await (const e of events) {
    if (e.type === 'user_message') open.add(e.data.turnId);
    else if (e.type === 'turn_complete') open.delete(e.data.turnId);
  }
  return [...open].pop() ?? null;
}
