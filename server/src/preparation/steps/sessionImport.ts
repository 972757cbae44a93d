import { randomBytes } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import { join, posix } from 'node:path';
import type { SessionImportFile, TranscriptEntry, PersistedEvent } from '@berth/protocol';
import { eventHistory } from '../../events/history';
import { BerthError } from '../../util/errors';
import type { PreparationStepModule } from '../types';

/** Rebuilds the conversation from persisted events: one user and one assistant entry per turn. */
export async function transcriptFrom(events: AsyncIterable<PersistedEvent>, excludeTurnId?: string): Promise<TranscriptEntry[]> {
  const entries: TranscriptEntry[] = [];
  const answers = new Map<string, TranscriptEntry>();
  for await (const e of events) {
    if (e.type === 'user_message' && e.data.turnId !== excludeTurnId) {
      entries.push({ role: 'user', text: e.data.text });
      const answer: TranscriptEntry = { role: 'assistant', text: '' };
      answers.set(e.data.turnId, answer);
      entries.push(answer);
    } else if (e.type === 'assistant_output') {
      const answer = answers.get(e.data.turnId);
      if (answer) answer.text += e.data.text;
    }
  }
  return entries.filter((e) => e.role === 'user' || e.text.length > 0);
}

/**
 * Hands the conversation so far to the new agent host through a temp file in the shared folder.
 * The file is removed on every path, success or not.
 */
export const sessionImport: PreparationStepModule = {
  name: 'session_import',
  describe: (run) => (run.resume ? 'restoring the conversation' : 'importing the session'),
  timeoutMs: (c) => c.timeouts.sessionImportMs,
  async run(run, signal) {
    const { ctx, session } = run;
    const sandbox = run.sandbox;
    const agent = run.agent;
    if (!sandbox || !agent) throw new BerthError('internal', 'no agent host to import the session into');
    const transcript = await transcriptFrom(eventHistory(ctx.store, session.id), run.initiateTurn?.turnId);
    const content: SessionImportFile = {
      version: 1,
      sessionId: session.id,
      workspace: sandbox.workspaceFolder,
      transcript,
    };
    const name = `import-${randomBytes(8).toString('hex')}.json`;
    const hostFile = join(run.sharedDir, name);
    try {
      // Readable by the sandbox's own user; the data dir around it is private to the server (0700).
      await writeFile(hostFile, JSON.stringify(content), { mode: 0o644 });
      const entries = await agent.importSession(posix.join(sandbox.sharedFolder, name), ctx.config.timeouts.sessionImportMs, signal);
      run.runtime = run.goLive({ sessionId: session.id, sandbox, agent });
      await ctx.store.updateSession(session.id, { preparedAt: new Date().toISOString() });
      return { message: entries === 0 ? 'new conversation' : `restored ${entries / 2} earlier turn(s)` };
    } finally {
      await rm(hostFile, { force: true });
    }
  },
};
