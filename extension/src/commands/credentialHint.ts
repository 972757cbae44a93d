// When git on the server was refused by a repository's https remote for want of a credential (a
// session's clone, a push), say so and offer to add one there and then, then to try again.
import * as vscode from 'vscode';
import type { SessionMachineState } from '../session/stateMachine';
import { credentialNeeded } from '../credentials/cloneAuth';
import { GITHUB_HOST } from '../credentials/hosts';
import { errorMessage } from '../logger';
import { addGitCredential, connectGitHub, type FollowUp } from './credentials';
import type { CommandContext } from './context';

/**
 * Offers a credential for `host` after git was refused there: Connect GitHub (github.com) or Add
 * Git Credential — Replace the Token when one is stored and was refused — then `retry`.
 */
export async function offerCredential(ctx: CommandContext, host: string, what: string, retry: FollowUp): Promise<void> {
  const api = await ctx.connection.ready();
  const stored = (await api.listCredentials().catch(() => [])).find((c) => c.host === host);
  const add = stored ? 'Replace the Token…' : 'Add Git Credential…';
  const github = host === GITHUB_HOST ? 'Connect GitHub' : undefined;
  const message = stored
    ? `Berth: ${host} refused the stored credential (user ${stored.username}) for ${what}. Replace its token, then try again.`
    : `Berth: ${host} asks to sign in for ${what}, and Berth has no credential for ${host}. Add one, then try again.`;
  const choice = await vscode.window.showErrorMessage(message, ...(github ? [github] : []), add);
  if (choice === github) await connectGitHub(ctx, retry);
  else if (choice === add) await addGitCredential(ctx, { host }, retry);
}

/** Watches the open session: once per failure, a clone refused for want of a credential gets the offer. */
export function watchCloneFailures(ctx: CommandContext): (state: SessionMachineState) => void {
  let offeredFor = '';
  return (state) => {
    const session = state.session;
    if (!session?.sessionId || session.status !== 'failed') {
      offeredFor = ''; // a Retry that fails again is a new failure (git's words may be the same)
      return;
    }
    const needed = credentialNeeded(session.repo?.url, session.error);
    if (!needed) return;
    const key = `${session.sessionId}\n${session.error?.message}`;
    if (key === offeredFor) return;
    offeredFor = key;
    const id = session.sessionId;
    const retry: FollowUp = {
      label: 'Retry',
      run: async () => {
        // Only the session that failed, and only while it still has.
        if (ctx.controller.sessionId === id && ctx.controller.state.session?.status === 'failed') await ctx.controller.retry();
      },
    };
    offerCredential(ctx, needed.host, 'the clone of this session\'s repository', retry).catch((err: unknown) => {
      ctx.log.warn(`credential offer: ${ctx.log.redactText(errorMessage(err))}`);
    });
  };
}
