// Berth: Manage Secrets — environment variables the server gives to a user's sessions: for all of
// them or for one repository, to setup commands only or also to the agent. A value goes from a
// password box to the server and into the logger's redaction set; it is never shown, logged or stored here.
import * as vscode from 'vscode';
import { LIMITS, type SecretExposure, type SecretView } from '@berth/protocol';
import { repoUrlWithoutCredentials } from '../credentials/hosts';
import { EXPOSURES, existingSecret, secretEntries, secretScopeText } from '../credentials/listRows';
import { secretNameProblem, secretValueProblem } from '../credentials/validation';
import { currentRepo } from '../git';
import { ApiError, type ApiClient } from '../session/apiClient';
import { type CommandContext } from './context';
import { info, pickFromList, toValidation } from './quickInputs';

const TITLE = 'Berth: Manage Secrets';
const ADD_TITLE = 'Berth: Add Secret';

/** The secrets (name, scope, exposure — never values); add one, or choose one to replace or remove. */
export async function manageSecrets(ctx: CommandContext): Promise<void> {
  const api = await ctx.connection.ready();
  const workspaceRepo = await workspaceRepoUrl();
  let secrets: SecretView[] = [];
  const picked = await pickFromList({
    title: TITLE,
    placeholder: 'Choose a secret to replace or remove it, or add one (values are never shown)',
    load: async () => secretEntries((secrets = await api.listSecrets()), new Date(), workspaceRepo),
    buttons: (choice) => (choice.action === 'open' ? [{ id: 'remove', icon: 'trash', tooltip: 'Remove' }] : []),
  });
  if (!picked) return;
  const choice = picked.value;
  if (choice.action === 'add') {
    await addSecret(ctx, api, secrets, workspaceRepo);
    return;
  }
  const { secret } = choice;
  if (picked.button === 'remove') {
    await removeSecret(ctx, api, secret);
    return;
  }
  const action = await vscode.window.showQuickPick(
    [
      { label: '$(edit) Replace the value…', detail: `A new value for ${secret.name} (${secretScopeText(secret.repo)}); the exposure can change too`, action: 'replace' as const },
      { label: '$(trash) Remove…', detail: 'Sandboxes prepared from now on no longer get it', action: 'remove' as const },
    ],
    { title: `${TITLE}: ${secret.name} (${secretScopeText(secret.repo)})`, placeHolder: 'What should happen to this secret?' },
  );
  if (action?.action === 'replace') await replaceSecret(ctx, api, secret);
  else if (action?.action === 'remove') await removeSecret(ctx, api, secret);
}

/** Name, value (a password box), where it applies, who sees it; then PUT. The same name and scope replaces. */
async function addSecret(ctx: CommandContext, api: ApiClient, secrets: SecretView[], workspaceRepo: string | null): Promise<void> {
  const typedName = await vscode.window.showInputBox({
    title: `${ADD_TITLE} (1/4)`,
    prompt: 'Name: sessions get the secret as this environment variable',
    placeHolder: 'e.g. NPM_TOKEN',
    ignoreFocusOut: true,
    validateInput: (value) => {
      const problem = secretNameProblem(value);
      if (problem) return toValidation(problem);
      const same = secrets.filter((s) => s.name === value.trim());
      return same.length ? info(`${value.trim()} is stored for ${same.map((s) => secretScopeText(s.repo)).join(' and ')}: adding it for the same sessions replaces it.`) : undefined;
    },
  });
  if (typedName === undefined) return;
  const name = typedName.trim();

  const value = await askValue(`${ADD_TITLE} (2/4)`, name);
  if (value === undefined) return;
  ctx.log.addSecret(value);

  const repo = await askScope(name, secrets, workspaceRepo);
  if (repo === undefined) return;
  const exposeTo = await askExposure(`${ADD_TITLE} (4/4)`, name);
  if (!exposeTo) return;
  await store(ctx, api, { name, value, repo, exposeTo }, existingSecret(secrets, name, repo) !== undefined);
}

/** A new value (and exposure) for a stored secret; its name and scope stay. */
async function replaceSecret(ctx: CommandContext, api: ApiClient, secret: SecretView): Promise<void> {
  const title = `Berth: Replace the secret ${secret.name}`;
  const value = await askValue(`${title} (1/2)`, secret.name);
  if (value === undefined) return;
  ctx.log.addSecret(value);
  const exposeTo = await askExposure(`${title} (2/2)`, secret.name, secret.exposeTo);
  if (!exposeTo) return;
  await store(ctx, api, { name: secret.name, value, repo: secret.repo, exposeTo }, true);
}

function askValue(title: string, name: string): Thenable<string | undefined> {
  return vscode.window.showInputBox({
    title,
    prompt: `Value of ${name}: it goes to the Berth server and is never shown again`,
    password: true,
    ignoreFocusOut: true,
    validateInput: (value) => toValidation(secretValueProblem(value)),
  });
}

/** null: all of the user's sessions; a URL: only that repository's; undefined: cancelled. */
async function askScope(name: string, secrets: SecretView[], workspaceRepo: string | null): Promise<string | null | undefined> {
  const replaces = (repo: string | null) => (existingSecret(secrets, name, repo) ? ` (replaces the stored ${name})` : '');
  const items: (vscode.QuickPickItem & { scope: 'all' | 'workspace' | 'other' })[] = [
    { label: '$(globe) All of my sessions', detail: `Every session you start on this Berth server gets it${replaces(null)}`, scope: 'all' },
  ];
  if (workspaceRepo) {
    items.push({ label: '$(repo) Only this repository', description: workspaceRepo, detail: `Only sessions of the workspace's repository${replaces(workspaceRepo)}`, scope: 'workspace' });
  }
  items.push({ label: '$(edit) Only another repository…', detail: 'Type its URL, as sessions are started with it', scope: 'other' });
  const picked = await vscode.window.showQuickPick(items, { title: `${ADD_TITLE} (3/4)`, placeHolder: `Which sessions get ${name}?`, ignoreFocusOut: true });
  if (!picked) return undefined;
  if (picked.scope === 'all') return null;
  if (picked.scope === 'workspace') return workspaceRepo;
  const url = await vscode.window.showInputBox({
    title: `${ADD_TITLE} (3/4)`,
    prompt: `URL of the repository whose sessions get ${name}`,
    placeHolder: 'https://github.com/owner/repo.git',
    ignoreFocusOut: true,
    validateInput: (value) =>
      !value.trim() ? 'Enter the repository URL' : value.trim().length > LIMITS.urlLength ? `A URL has at most ${LIMITS.urlLength} characters` : undefined,
  });
  return url === undefined ? undefined : repoUrlWithoutCredentials(url);
}

async function askExposure(title: string, name: string, current?: SecretExposure): Promise<SecretExposure | undefined> {
  const items = (Object.keys(EXPOSURES) as SecretExposure[]).map((exposure) => ({
    label: `$(${exposure === 'agent' ? 'eye' : 'lock'}) ${EXPOSURES[exposure].label}`,
    description: `${EXPOSURES[exposure].explanation}${exposure === current ? ' (now)' : ''}`,
    exposure,
  }));
  const picked = await vscode.window.showQuickPick(items, { title, placeHolder: `Who sees ${name}?`, ignoreFocusOut: true });
  return picked?.exposure;
}

async function store(ctx: CommandContext, api: ApiClient, secret: { name: string; value: string; repo: string | null; exposeTo: SecretExposure }, replacing: boolean): Promise<void> {
  const saved = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `Berth: saving the secret ${secret.name}…` }, () =>
    api.putSecret(secret.name, { value: secret.value, exposeTo: secret.exposeTo, ...(secret.repo !== null ? { repo: secret.repo } : {}) }),
  );
  const exposure = EXPOSURES[saved.exposeTo];
  ctx.log.info(`secrets: ${replacing ? 'replaced' : 'added'} ${saved.name} (${secretScopeText(saved.repo)}, ${saved.exposeTo})`);
  void vscode.window.showInformationMessage(
    `Berth: ${replacing ? 'replaced' : 'added'} the secret ${saved.name} for ${saved.repo === null ? 'all of your sessions' : `sessions of ${saved.repo}`} (${exposure.label} — ${exposure.explanation}). New sessions get it; running ones at their next sandbox (Retry, resume after sleeping).`,
  );
}

async function removeSecret(ctx: CommandContext, api: ApiClient, secret: SecretView): Promise<void> {
  const remove = 'Remove';
  const confirm = await vscode.window.showWarningMessage(
    `Remove the secret ${secret.name} (${secretScopeText(secret.repo)})?`,
    { modal: true, detail: 'Sandboxes prepared from now on (new sessions, Retry, resume after sleeping) no longer get it; running ones keep it until then. Its value cannot be shown or recovered.' },
    remove,
  );
  if (confirm !== remove) return;
  try {
    await api.deleteSecret(secret.name, secret.repo);
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 404)) throw err;
    void vscode.window.showInformationMessage(`Berth: the secret ${secret.name} was already removed.`);
    return;
  }
  ctx.log.info(`secrets: removed ${secret.name} (${secretScopeText(secret.repo)})`);
  void vscode.window.showInformationMessage(`Berth: removed the secret ${secret.name} (${secretScopeText(secret.repo)}).`);
}

/** The workspace's remote as a session would be started with it, without credentials in it. */
async function workspaceRepoUrl(): Promise<string | null> {
  const workspace = await currentRepo();
  return workspace ? repoUrlWithoutCredentials(workspace.url) : null;
}
