// Berth: Start Session — repo (workspace remote + branch, or a typed URL), optional setup, prompt;
// then the fast path, with the chat showing "preparing" the moment Enter is pressed.
import * as vscode from 'vscode';
import { performance } from 'node:perf_hooks';
import { currentRepo } from '../git';
import { listDevcontainerConfigs } from '../devcontainerConfigs';
import { buildStartRequest, splitBranch } from './startRequest';
import { errorMessage, type CommandContext } from './context';
import type { ModelsResponse } from '@berth/protocol';
import type { ApiClient } from '../session/apiClient';

/** Arguments for scripted use (tests, other extensions); anything missing is asked for. */
export interface StartSessionArgs {
  repoUrl?: string;
  branch?: string;
  prompt?: string;
  setup?: string[];
  /** The dev container config (a path in the repository). */
  devcontainer?: string;
  /** One of the server's models (`GET /v1/models`). */
  model?: string;
}

const TITLE = 'Berth: Start Session';
/** The target from Enter to "preparing" in the chat. */
const INSTANT_MS = 300;

export async function startSession(ctx: CommandContext, args: StartSessionArgs = {}): Promise<string | null> {
  const apiReady = ctx.connection.ready();
  apiReady.catch(() => {}); // reported below, after the questions
  // Load the chat webview while the user types, so that "preparing" can paint at once after Enter.
  await ctx.chatView.reveal();

  const repo = args.repoUrl ? { url: args.repoUrl, branch: args.branch } : await askRepo();
  if (!repo) return null;
  // A checkout with several dev container configs: the server needs to be told which one.
  const devcontainer = args.devcontainer ?? (repo.folder ? await askDevcontainer(ctx, repo.folder) : undefined);
  if (devcontainer === null) return null;
  const setup = args.setup ?? (await askSetup());
  if (setup === undefined) return null;
  // A server offering several models: which one (the last one picked comes first).
  const model = args.model ?? (await askModel(ctx, apiReady));
  if (model === null) return null;
  const prompt =
    args.prompt ??
    (await vscode.window.showInputBox({
      title: `${TITLE} (3/3)`,
      prompt: 'What should the agent do?',
      placeHolder: 'e.g. Fix the failing test in src/parser.ts',
      ignoreFocusOut: true,
      validateInput: (v) => (v.trim() ? undefined : 'A prompt is required'),
    }));
  if (prompt === undefined) return null;
  const pressedAt = performance.now();

  const autoInitiate = vscode.workspace.getConfiguration('berth').get<boolean>('autoInitiate', true);
  const built = buildStartRequest({ repoUrl: repo.url, branch: repo.branch, prompt, setup, autoInitiate, devcontainer, model });
  if (!built.ok) {
    void vscode.window.showErrorMessage(`Berth: ${built.message}`);
    return null;
  }
  try {
    await apiReady;
  } catch (err) {
    void vscode.window.showErrorMessage(`Berth: ${errorMessage(err)}`);
    return null;
  }

  const started = ctx.controller.start(built.request); // shows "preparing" synchronously, then POSTs
  const revision = ctx.chatView.postNow();
  void ctx.chatView.reveal();
  void ctx.chatView.waitForRender(revision, 10_000).then((painted) => {
    const ms = Math.round(performance.now() - pressedAt);
    if (!painted) ctx.log.warn(`start: the chat did not confirm painting "preparing" within 10 s`);
    else if (ms > INSTANT_MS) ctx.log.warn(`start: the chat showed "preparing" ${ms} ms after Enter (target < ${INSTANT_MS} ms)`);
    else ctx.log.info(`start: the chat showed "preparing" ${ms} ms after Enter`);
  });

  const sessionId = await started;
  const answeredMs = Math.round(performance.now() - pressedAt);
  if (!sessionId) {
    ctx.log.warn(`start: the server refused the session after ${answeredMs} ms: ${ctx.controller.state.session?.error?.message ?? ''}`);
    return null;
  }
  ctx.log.info(`start: session ${sessionId} accepted in ${answeredMs} ms (${ctx.controller.state.session?.status})`);
  // Without auto-initiate the server prepared synchronously; the prompt becomes the first message.
  if (!autoInitiate && ctx.controller.state.session?.status === 'ready') {
    await ctx.controller.send(built.request.prompt ?? prompt).catch((err: unknown) => ctx.log.warn(`start: first message: ${errorMessage(err)}`));
  }
  return sessionId;
}

const LAST_MODEL_KEY = 'berth.lastModel';

/**
 * The model to start with when the server offers several; undefined when there is nothing to
 * choose (one model, a command agent, or the server cannot be asked now), null when cancelled.
 */
async function askModel(ctx: CommandContext, apiReady: Promise<ApiClient>): Promise<string | undefined | null> {
  let offered: ModelsResponse;
  try {
    offered = await (await apiReady).models();
  } catch (err) {
    ctx.log.debug(`start: no model list (${errorMessage(err)})`);
    return undefined;
  }
  if (offered.models.length < 2) return undefined;
  const last = ctx.extension.globalState.get<string>(LAST_MODEL_KEY);
  const items = offered.models
    .map((model) => ({ label: model, description: model === offered.default ? 'the server\'s default' : undefined }))
    .sort((a, b) => Number(b.label === last) - Number(a.label === last));
  const picked = await vscode.window.showQuickPick(items, {
    title: `${TITLE}: model`,
    placeHolder: 'Which model should the agent use?',
    ignoreFocusOut: true,
  });
  if (!picked) return null;
  await ctx.extension.globalState.update(LAST_MODEL_KEY, picked.label);
  return picked.label;
}

/**
 * The config to start with when the checkout has several (the last one picked here comes first);
 * undefined when there is nothing to choose, null when the user cancelled.
 */
async function askDevcontainer(ctx: CommandContext, folder: string): Promise<string | undefined | null> {
  const configs = listDevcontainerConfigs(folder);
  if (configs.length < 2) return undefined;
  const key = `berth.devcontainer:${folder}`;
  const last = ctx.extension.workspaceState.get<string>(key);
  const items = configs
    .map((c) => ({ label: c.name ?? c.path, description: c.name ? c.path : undefined, path: c.path }))
    .sort((a, b) => Number(b.path === last) - Number(a.path === last));
  const picked = await vscode.window.showQuickPick(items, {
    title: `${TITLE}: dev container`,
    placeHolder: 'This repository has several dev container configs: which one should the sandbox use?',
    ignoreFocusOut: true,
  });
  if (!picked) return null;
  await ctx.extension.workspaceState.update(key, picked.path);
  return picked.path;
}

async function askRepo(): Promise<{ url: string; branch?: string; folder?: string } | undefined> {
  const workspace = await currentRepo();
  if (workspace) {
    const typeUrl = { label: '$(edit) Enter a repository URL…', choice: 'url' as const };
    const useWorkspace = {
      label: `$(repo) ${workspace.url}`,
      description: workspace.branch ? `branch ${workspace.branch}` : undefined,
      detail: `The repository of ${workspace.folder}`,
      choice: 'workspace' as const,
    };
    const choice = await vscode.window.showQuickPick([useWorkspace, typeUrl], {
      title: `${TITLE} (1/3)`,
      placeHolder: 'Which repository should the session work on?',
      ignoreFocusOut: true,
    });
    if (!choice) return undefined;
    if (choice.choice === 'workspace') return { url: workspace.url, branch: workspace.branch, folder: workspace.folder };
  }
  const url = await vscode.window.showInputBox({
    title: `${TITLE} (1/3)`,
    prompt: 'Repository URL to clone (https, ssh or, for the local server, a path); add #branch for a branch',
    placeHolder: 'https://github.com/owner/repo.git#main',
    ignoreFocusOut: true,
    validateInput: (v) => (v.trim() ? undefined : 'A repository URL is required'),
  });
  if (url === undefined) return undefined;
  const [repoUrl, branch] = splitBranch(url.trim());
  return { url: repoUrl, branch };
}

async function askSetup(): Promise<string[] | undefined> {
  const setup = await vscode.window.showInputBox({
    title: `${TITLE} (2/3)`,
    prompt: 'Setup command to run after the clone (optional; leave empty for none)',
    placeHolder: 'e.g. npm ci',
    ignoreFocusOut: true,
  });
  if (setup === undefined) return undefined;
  return setup.trim() ? [setup.trim()] : [];
}
