// Berth: Connect GitHub, Add Git Credential, Git Credentials — the tokens the server uses to clone,
// fetch and push private https repositories. A token goes from a password box (or VS Code's GitHub
// sign-in) to the server and into the logger's redaction set; it is never shown, logged or stored here.
import * as vscode from 'vscode';
import type { CredentialView } from '@berth/protocol';
import { connectGitHub as connect } from '../credentials/githubConnect';
import { credentialHostFromRemote, DEFAULT_USERNAME, GITHUB_HOST, normalizeHostInput, tokenHint } from '../credentials/hosts';
import { credentialEntries } from '../credentials/listRows';
import { cleanToken, hostProblem, tokenProblem, usernameProblem } from '../credentials/validation';
import { currentRepo } from '../git';
import { ApiError, type ApiClient } from '../session/apiClient';
import { errorMessage, type CommandContext } from './context';
import { pickFromList, toValidation } from './quickInputs';

const ADD_TITLE = 'Berth: Add Git Credential';
const LIST_TITLE = 'Berth: Git Credentials';

/** Arguments for scripted use and for "Replace the token…": a host given is not asked for. */
export interface AddCredentialArgs {
  host?: string;
}

/** What to offer on the success notification once the credential is stored (e.g. Retry the clone). */
export interface FollowUp {
  label: string;
  run(): Promise<unknown>;
}

/** The success notification; its follow-up button runs after the command has returned. */
function announce(ctx: CommandContext, message: string, followUp?: FollowUp): void {
  if (!followUp) {
    void vscode.window.showInformationMessage(message);
    return;
  }
  void vscode.window.showInformationMessage(message, followUp.label).then(async (choice) => {
    if (choice !== followUp.label) return;
    try {
      await followUp.run();
    } catch (err) {
      const text = ctx.log.redactText(errorMessage(err));
      ctx.log.error(`${followUp.label}: ${text}`);
      void vscode.window.showErrorMessage(`Berth: ${text}`);
    }
  });
}

/** VS Code's GitHub sign-in (scope `repo`), its token stored on the server for github.com. */
export async function connectGitHub(ctx: CommandContext, followUp?: FollowUp): Promise<void> {
  const api = await ctx.connection.ready();
  const outcome = await connect({
    getSession: async () => vscode.authentication.getSession('github', ['repo'], { createIfNone: true }),
    api,
    protect: (secret) => ctx.log.addSecret(secret),
  });
  switch (outcome.kind) {
    case 'connected': {
      ctx.log.info(`connect GitHub: stored the token of ${outcome.account} for ${GITHUB_HOST}${outcome.replaced ? ' (replacing the earlier one)' : ''}`);
      const replaced = outcome.replaced ? ` It replaces the ${GITHUB_HOST} credential stored before.` : '';
      announce(ctx, `Berth: GitHub connected as ${outcome.account}; Berth uses it to clone, fetch and push ${GITHUB_HOST} repositories.${replaced}`, followUp);
      return;
    }
    case 'cancelled':
      ctx.log.info('connect GitHub: the sign-in was cancelled; nothing was stored');
      return;
    case 'unavailable': {
      ctx.log.warn(`connect GitHub: no GitHub sign-in in this editor: ${outcome.reason}`);
      const add = 'Add Git Credential…';
      const choice = await vscode.window.showErrorMessage(
        `Berth: GitHub sign-in is not available in this editor (${outcome.reason}). Add a personal access token for ${GITHUB_HOST} instead.`,
        add,
      );
      if (choice === add) await addGitCredential(ctx, { host: GITHUB_HOST }, followUp);
      return;
    }
    case 'failed':
      throw new Error(outcome.message);
  }
}

/** Host (the workspace's https remote prefilled), user name (optional), token (a password box). */
export async function addGitCredential(ctx: CommandContext, args: AddCredentialArgs = {}, followUp?: FollowUp): Promise<CredentialView | undefined> {
  const api = await ctx.connection.ready();
  const stored = api.listCredentials();
  stored.catch(() => {}); // only a hint for the user name; the PUT reports a server problem
  const fixedHost = args.host ? normalizeHostInput(args.host) : undefined;
  const steps = fixedHost ? 2 : 3;
  const title = (step: number) => `${fixedHost ? `Berth: Replace the credential for ${fixedHost}` : ADD_TITLE} (${step}/${steps})`;

  let host = fixedHost;
  if (!host) {
    const workspace = await currentRepo();
    const remoteHost = workspace ? credentialHostFromRemote(workspace.url) : null;
    const typed = await vscode.window.showInputBox({
      title: title(1),
      prompt:
        'Host of the repositories, as in their https URL (host or host:port; a pasted URL works too)' +
        (workspace && !remoteHost ? ". The workspace's remote is not https: Berth uses credentials for https and http remotes." : ''),
      value: remoteHost ?? '',
      placeHolder: GITHUB_HOST,
      ignoreFocusOut: true,
      validateInput: (value) => toValidation(hostProblem(value)),
    });
    if (typed === undefined) return undefined;
    host = normalizeHostInput(typed);
  }

  const existing = (await stored.catch(() => [] as CredentialView[])).find((c) => c.host === host);
  const username = await vscode.window.showInputBox({
    title: title(steps - 1),
    prompt: `User name for ${host}; leave empty for ${DEFAULT_USERNAME}, which GitHub, Gitea and most token logins accept`,
    value: existing?.username ?? '',
    placeHolder: DEFAULT_USERNAME,
    ignoreFocusOut: true,
    validateInput: (value) => toValidation(usernameProblem(value)),
  });
  if (username === undefined) return undefined;

  const typedToken = await vscode.window.showInputBox({
    title: title(steps),
    prompt: `Access token for ${host}: ${tokenHint(host)}. It goes to the Berth server and is never shown again.`,
    password: true,
    ignoreFocusOut: true,
    validateInput: (value) => toValidation(tokenProblem(value)),
  });
  if (typedToken === undefined) return undefined;
  const token = cleanToken(typedToken);
  ctx.log.addSecret(token);

  const credential = await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: `Berth: saving the credential for ${host}…` },
    () => api.putCredential(host, { ...(username.trim() ? { username: username.trim() } : {}), token }),
  );
  ctx.log.info(`credentials: ${existing ? 'replaced' : 'added'} ${credential.host} (user ${credential.username})`);
  announce(
    ctx,
    `Berth: ${existing ? 'replaced' : 'saved'} the credential for ${credential.host} (user ${credential.username}); Berth uses it to clone, fetch and push https repositories on ${credential.host}.`,
    followUp,
  );
  return credential;
}

/** The stored credentials (host, user name, when); choose one to replace its token or remove it. */
export async function gitCredentials(ctx: CommandContext): Promise<void> {
  const api = await ctx.connection.ready();
  const picked = await pickFromList({
    title: LIST_TITLE,
    placeholder: 'Choose a credential to replace its token or remove it, or add one (tokens are never shown)',
    load: async () => {
      const [credentials, workspace] = await Promise.all([api.listCredentials(), currentRepo()]);
      return credentialEntries(credentials, new Date(), workspace ? credentialHostFromRemote(workspace.url) : null);
    },
    buttons: (choice) => (choice.action === 'open' ? [{ id: 'remove', icon: 'trash', tooltip: 'Remove' }] : []),
  });
  if (!picked) return;
  const choice = picked.value;
  if (choice.action === 'add') {
    await addGitCredential(ctx);
    return;
  }
  if (choice.action === 'connectGitHub') {
    await connectGitHub(ctx);
    return;
  }
  const { credential } = choice;
  if (picked.button === 'remove') {
    await removeCredential(ctx, api, credential);
    return;
  }
  const action = await vscode.window.showQuickPick(
    [
      { label: '$(key) Replace the token…', detail: `A new token for ${credential.host} (the user name can change too)`, action: 'replace' as const },
      { label: '$(trash) Remove…', detail: `Berth stops using a credential for ${credential.host}`, action: 'remove' as const },
    ],
    { title: `${LIST_TITLE}: ${credential.host} (${credential.username})`, placeHolder: 'What should happen to this credential?' },
  );
  if (action?.action === 'replace') await addGitCredential(ctx, { host: credential.host });
  else if (action?.action === 'remove') await removeCredential(ctx, api, credential);
}

async function removeCredential(ctx: CommandContext, api: ApiClient, credential: CredentialView): Promise<void> {
  const remove = 'Remove';
  const confirm = await vscode.window.showWarningMessage(
    `Remove the credential for ${credential.host} (user ${credential.username})?`,
    {
      modal: true,
      detail: `Berth will no longer use it to clone, fetch or push https repositories on ${credential.host}: sessions of private repositories there fail to clone or push until you add one again.`,
    },
    remove,
  );
  if (confirm !== remove) return;
  try {
    await api.deleteCredential(credential.host);
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 404)) throw err;
    void vscode.window.showInformationMessage(`Berth: the credential for ${credential.host} was already removed.`);
    return;
  }
  ctx.log.info(`credentials: removed ${credential.host}`);
  void vscode.window.showInformationMessage(`Berth: removed the credential for ${credential.host}.`);
}
