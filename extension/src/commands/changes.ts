// Berth: Review Changes, Apply Changes, Push Branch, Open Pull Request — the session's work
// comes home. Each acts on the open session, or on the session a Sessions view item passes.
import * as vscode from 'vscode';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChangedFile, ChangesSummary, PushResponse, SessionView } from '@berth/protocol';
import { bothSides, diffSides } from '../changes/diffSides';
import { BranchExistsError, LocalRepo, MissingBaseError, short } from '../changes/localRepo';
import { sessionFileUri } from '../changes/sessionFileSystem';
import { applyPlan, describePlan, planApply, planCounts, WorktreeChangedError, type ApplyResult } from '../changes/worktreeApply';
import { ApiError, type ApiClient } from '../session/apiClient';
import { credentialNeeded } from '../credentials/cloneAuth';
import { offerCredential } from './credentialHint';
import { errorMessage, type CommandContext } from './context';

export interface CommitRange {
  from: string;
  to: string;
}

interface Target {
  id: string;
  view: SessionView;
  api: ApiClient;
}

/** The session a command acts on: the one passed (an id, or a Sessions view item), else the open one. */
export async function resolveTarget(ctx: CommandContext, arg?: unknown): Promise<Target> {
  const id =
    typeof arg === 'string' ? arg : arg && typeof arg === 'object' && typeof (arg as SessionView).id === 'string' ? (arg as SessionView).id : ctx.controller.sessionId;
  if (!id) throw new Error('No session is open. Open one with "Berth: Open Session".');
  const api = await ctx.connection.ready();
  return { id, view: await api.getSession(id), api };
}

function requireChanges(view: SessionView): ChangesSummary {
  const changes = view.changes;
  if (!changes || changes.head === changes.base || changes.files.length === 0) throw new Error('The session has not changed any file yet.');
  return changes;
}

/**
 * A branch of its own for the session's work. The server works on the branch the session was started
 * on when one was given (e.g. the workspace's `main`): pushing that would update it directly, and a
 * local branch of that name already exists.
 */
export function ownBranch(view: SessionView, changes: ChangesSummary): string {
  return changes.branch !== view.repo.branch ? changes.branch : `berth/${view.id.slice(4, 16)}`;
}

function sessionLabel(view: SessionView): string {
  const prompt = view.prompt?.split('\n')[0]?.trim() ?? '';
  return prompt ? (prompt.length > 50 ? `${prompt.slice(0, 49)}…` : prompt) : view.id;
}

function totals(files: number, additions: number, deletions: number): string {
  return `${files} file${files === 1 ? '' : 's'}, +${additions} −${deletions}`;
}

// ---- review ----

/** The multi-file diff editor: the whole session (base → head), or one checkpoint's range. */
export async function reviewChanges(ctx: CommandContext, arg?: unknown, range?: CommitRange): Promise<void> {
  const { id, view, api } = await resolveTarget(ctx, arg);
  const res = await api.getChanges(id, range ?? {});
  if (res.files.length === 0) {
    void vscode.window.showInformationMessage('Berth: there are no changed files to review.');
    return;
  }
  const what = range ? `one turn (${short(res.from)} → ${short(res.to)})` : `"${sessionLabel(view)}"`;
  const title = `Berth: ${what} — ${totals(res.files.length, res.additions, res.deletions)}`;
  const resources = res.files.map((file) => {
    const sides = diffSides(id, res.from, res.to, file);
    return [sessionFileUri(sides.resource), sides.left ? sessionFileUri(sides.left) : undefined, sides.right ? sessionFileUri(sides.right) : undefined];
  });
  await vscode.commands.executeCommand('vscode.changes', title, resources);
  ctx.log.info(`review: ${id} ${res.from.slice(0, 7)}..${res.to.slice(0, 7)} (${res.files.length} files)`);
}

/** One file's diff editor (a click on a file in a changes card). */
export async function openFileDiff(sessionId: string, range: CommitRange, file: ChangedFile): Promise<void> {
  const { left, right } = bothSides(diffSides(sessionId, range.from, range.to, file));
  const label = file.status === 'added' ? 'added' : file.status === 'deleted' ? 'deleted' : `${short(range.from)} ↔ ${short(range.to)}`;
  await vscode.commands.executeCommand('vscode.diff', sessionFileUri(left), sessionFileUri(right), `${file.path} (Berth: ${label})`, { preview: true });
}

// ---- apply ----

/** Brings the session's work into the workspace's checkout: as a branch, or onto the working tree. */
export async function applyChanges(ctx: CommandContext, arg?: unknown): Promise<void> {
  const { id, view, api } = await resolveTarget(ctx, arg);
  const changes = requireChanges(view);
  const repo = await pickWorkspaceRepo(view.repo.url, changes.base);
  if (!repo) return;
  if (!(await ensureBase(ctx, repo, view.repo.url, changes.base))) return;

  await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: `Berth: downloading the session's changes (${totals(changes.files.length, changes.additions, changes.deletions)})…` },
    async () => {
      const dir = await mkdtemp(join(tmpdir(), 'berth-bundle-'));
      try {
        const file = join(dir, 'session.bundle');
        await api.downloadBundle(id, file);
        await repo.fetchBundle(file, { sessionId: id, branch: changes.branch, base: changes.base, head: changes.head });
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  );
  ctx.log.info(`apply: fetched ${id} at ${changes.head} into ${repo.root}`);

  const how = await vscode.window.showQuickPick(
    [
      {
        label: '$(git-branch) Check out as a new branch',
        detail: `git switch -c <name> ${short(changes.head)}: your uncommitted changes come along; git refuses, changing nothing, if they clash.`,
        how: 'switch' as const,
      },
      { label: '$(git-branch) Create a branch, stay where you are', detail: `git branch <name> ${short(changes.head)}: nothing in the working tree changes.`, how: 'branch' as const },
      {
        label: '$(diff) Apply onto the working tree',
        detail: 'A three-way merge with your uncommitted edits; a dry run lists conflicts and asks first. Nothing is staged or committed.',
        how: 'worktree' as const,
      },
    ],
    { title: `Berth: Apply Changes — ${totals(changes.files.length, changes.additions, changes.deletions)} into ${repo.root}`, placeHolder: 'How should the session\'s work come in?', ignoreFocusOut: true },
  );
  if (!how) return;
  if (how.how === 'worktree') await applyOntoWorktree(ctx, repo, id, changes);
  else await applyAsBranch(ctx, repo, id, changes, ownBranch(view, changes), how.how === 'switch');
}

/** The workspace folder's repository that is a checkout of the session's repository (asks when several are). */
async function pickWorkspaceRepo(repoUrl: string, base: string): Promise<LocalRepo | null> {
  const folders = (vscode.workspace.workspaceFolders ?? []).filter((f) => f.uri.scheme === 'file');
  const candidates: { repo: LocalRepo; score: number }[] = [];
  for (const folder of folders) {
    const repo = await LocalRepo.open(folder.uri.fsPath);
    if (!repo || candidates.some((c) => c.repo.root === repo.root)) continue;
    // The same remote is the strong sign; having the base commit proves shared history too.
    const score = ((await repo.remoteFor(repoUrl)) ? 2 : 0) + ((await repo.hasCommit(base)) ? 1 : 0);
    if (score > 0) candidates.push({ repo, score });
  }
  if (candidates.length === 0) {
    void vscode.window.showErrorMessage(
      `Berth: the open workspace is not a checkout of ${repoUrl}. Open a clone of it (git clone ${repoUrl}) and run Apply Changes again.`,
    );
    return null;
  }
  const best = Math.max(...candidates.map((c) => c.score));
  const top = candidates.filter((c) => c.score === best);
  if (top.length === 1) return top[0]!.repo;
  const picked = await vscode.window.showQuickPick(
    top.map((c) => ({ label: c.repo.root, repo: c.repo })),
    { title: 'Berth: Apply Changes', placeHolder: 'Which checkout should the changes go into?' },
  );
  return picked?.repo ?? null;
}

/** The base commit must be local; when it is not, say so and offer the fetch that fixes it. */
async function ensureBase(ctx: CommandContext, repo: LocalRepo, repoUrl: string, base: string): Promise<boolean> {
  if (await repo.hasCommit(base)) return true;
  const remote = await repo.remoteFor(repoUrl);
  const missing = new MissingBaseError(base, remote);
  const fetch = remote ? `Fetch from ${remote.name}` : undefined;
  const choice = await vscode.window.showWarningMessage(
    `Berth: ${missing.message}`,
    { modal: true, detail: `The session started from ${short(base)} of ${repoUrl}; this checkout (${repo.root}) does not have that commit yet.` },
    ...(fetch ? [fetch] : []),
  );
  if (!remote || choice !== fetch) return false;
  await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `Berth: git fetch ${remote.name}…` }, () => repo.fetchRemote(remote.name));
  ctx.log.info(`apply: fetched ${remote.name} in ${repo.root} for base ${base}`);
  if (await repo.hasCommit(base)) return true;
  void vscode.window.showErrorMessage(
    `Berth: ${remote.name} does not have commit ${short(base)} either: the branch the session started from may have been rewritten. Push it, or start a new session.`,
  );
  return false;
}

async function applyAsBranch(ctx: CommandContext, repo: LocalRepo, id: string, changes: ChangesSummary, wanted: string, checkout: boolean): Promise<void> {
  const name = await vscode.window.showInputBox({
    title: checkout ? 'Berth: check out the session\'s work as a new branch' : 'Berth: create a branch at the session\'s work',
    prompt: `A new local branch at ${short(changes.head)}`,
    value: await freeBranchName(repo, wanted),
    ignoreFocusOut: true,
    validateInput: async (value) => {
      const candidate = value.trim();
      try {
        await repo.checkBranchName(candidate);
      } catch (err) {
        return errorMessage(err);
      }
      return (await repo.resolveRef(`refs/heads/${candidate}`)) ? `A branch named "${candidate}" already exists.` : undefined;
    },
  });
  if (name === undefined) return;
  let result;
  try {
    result = await repo.createBranch({ name: name.trim(), head: changes.head, checkout });
  } catch (err) {
    if (err instanceof BranchExistsError) throw new Error(`${err.message} Choose another name.`);
    throw err;
  }
  await ctx.deliveries.setApplied(id, { head: changes.head, how: 'branch', branch: result.branch, at: new Date().toISOString() });
  ctx.chatView.schedulePost();
  ctx.log.info(`apply: ${id} as branch ${result.branch}${checkout ? ' (checked out)' : ''}`);
  const carried = result.carried.length ? ` Your uncommitted changes came along (${result.carried.length} file${result.carried.length === 1 ? '' : 's'}).` : '';
  void vscode.window.showInformationMessage(
    checkout ? `Berth: switched to the new branch ${result.branch} at ${short(result.head)}.${carried}` : `Berth: created the branch ${result.branch} at ${short(result.head)}.`,
  );
}

/** The session's branch name, or that name with a number when a local branch already has it. */
async function freeBranchName(repo: LocalRepo, wanted: string): Promise<string> {
  for (let n = 1; n < 100; n++) {
    const name = n === 1 ? wanted : `${wanted}-${n}`;
    if (!(await repo.resolveRef(`refs/heads/${name}`))) return name;
  }
  return wanted;
}

async function applyOntoWorktree(ctx: CommandContext, repo: LocalRepo, id: string, changes: ChangesSummary): Promise<void> {
  const plan = await planApply(repo, changes.base, changes.head);
  const counts = planCounts(plan);
  const detail = describePlan(plan).join('\n');
  ctx.log.info(`apply: dry run for ${id} in ${repo.root}: ${JSON.stringify(counts)}`);
  if (counts.write + counts.delete + counts.merge + counts.conflict === 0) {
    if (counts.skip === 0) {
      await ctx.deliveries.setApplied(id, { head: changes.head, how: 'worktree', at: new Date().toISOString() });
      ctx.chatView.schedulePost();
    }
    void vscode.window.showInformationMessage(counts.skip ? `Berth: nothing can be applied.\n${detail}` : 'Berth: the working tree already has all of the session\'s changes.', { modal: counts.skip > 0 });
    return;
  }
  const withMarkers = 'Apply with Conflict Markers';
  const leaveConflicts = 'Apply, Leave Conflicting Files Alone';
  const apply = 'Apply';
  const buttons = counts.conflict ? [withMarkers, leaveConflicts] : [apply];
  const touchesLocalEdits = counts.conflict + counts.merge + counts.skip > 0;
  const message = `Apply the session's changes onto the working tree of ${repo.root}?`;
  const choice = touchesLocalEdits
    ? await vscode.window.showWarningMessage(message, { modal: true, detail }, ...buttons)
    : await vscode.window.showInformationMessage(message, { modal: true, detail }, ...buttons);
  if (!choice) return;
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const backupDir = join(await repo.gitDir(), 'berth', 'backups', id, stamp);
  let result: ApplyResult;
  try {
    result = await applyPlan(repo, plan, { conflicts: choice === leaveConflicts ? 'skip' : 'markers', backupDir });
  } catch (err) {
    if (err instanceof WorktreeChangedError) throw new Error(err.message);
    throw err;
  }
  await ctx.deliveries.setApplied(id, { head: changes.head, how: 'worktree', at: new Date().toISOString() });
  ctx.chatView.schedulePost();
  ctx.log.info(`apply: ${id} onto ${repo.root}: ${JSON.stringify({ ...result, skipped: result.skipped.length })}`);
  await reportApplied(repo, result);
}

async function reportApplied(repo: LocalRepo, result: ApplyResult): Promise<void> {
  const applied = result.written.length + result.deleted.length + result.merged.length + result.conflicted.length;
  const parts = [
    result.merged.length && `${result.merged.length} merged with your edits`,
    result.conflicted.length && `${result.conflicted.length} with conflict markers`,
    result.skipped.length && `${result.skipped.length} left as they were`,
  ].filter(Boolean);
  const backups = result.backupDir ? ` Copies of your versions: ${result.backupDir}` : '';
  const text = `Berth: applied ${applied} file${applied === 1 ? '' : 's'} onto the working tree${parts.length ? ` (${parts.join(', ')})` : ''}.${backups}`;
  const openConflicts = 'Open Conflicts';
  const sourceControl = 'Show Source Control';
  const actions = result.conflicted.length ? [openConflicts, sourceControl] : [sourceControl];
  const show = result.conflicted.length || result.skipped.length ? vscode.window.showWarningMessage : vscode.window.showInformationMessage;
  const choice = await show(text, ...actions);
  if (choice === openConflicts) {
    for (const path of result.conflicted) await vscode.window.showTextDocument(vscode.Uri.file(join(repo.root, ...path.split('/'))), { preview: false });
  } else if (choice === sourceControl) {
    await vscode.commands.executeCommand('workbench.view.scm');
  }
}

// ---- push and pull request ----

/** Pushes the session's work branch (or `branch`); offers another branch when the remote refuses. */
export async function pushBranch(ctx: CommandContext, arg?: unknown, branch?: string): Promise<PushResponse | undefined> {
  const { id, view, api } = await resolveTarget(ctx, arg);
  const changes = requireChanges(view);
  if (branch === undefined && changes.branch === view.repo.branch) {
    const chosen = await choosePushTarget(ctx, view, changes);
    if (chosen === undefined) return undefined;
    branch = chosen ?? undefined;
  }
  const target = branch ?? changes.branch;
  let res: PushResponse;
  try {
    res = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `Berth: pushing ${target} (${totals(changes.files.length, changes.additions, changes.deletions)})…` },
      () => api.push(id, branch),
    );
  } catch (err) {
    if (err instanceof ApiError && err.code === 'push_rejected') {
      const other = 'Push to Another Branch…';
      const choice = await vscode.window.showErrorMessage(`Berth: ${rejectedText(err.message)}`, other);
      if (choice !== other) return undefined;
      const name = await vscode.window.showInputBox({
        title: 'Berth: Push Branch',
        prompt: 'Push the session\'s work to this branch of the remote instead',
        value: `${ownBranch(view, changes)}-2`,
        ignoreFocusOut: true,
        validateInput: (v) => (v.trim() && !v.trim().startsWith('-') && !/\s/.test(v.trim()) ? undefined : 'Enter a branch name'),
      });
      return name === undefined ? undefined : pushBranch(ctx, id, name.trim());
    }
    if (err instanceof ApiError && err.code === 'conflict') {
      void vscode.window.showInformationMessage(`Berth: nothing to push: ${err.message}`);
      return undefined;
    }
    const needed = err instanceof ApiError && err.code === 'push_failed' ? credentialNeeded(view.repo.url, err) : null;
    if (needed) {
      await offerCredential(ctx, needed.host, `the push of ${target}`, { label: 'Push Again', run: () => pushBranch(ctx, id, branch) });
      return undefined;
    }
    throw err;
  }
  await ctx.deliveries.setPushed(id, { ...res, at: new Date().toISOString() });
  if (ctx.controller.sessionId === id) void ctx.controller.refreshChanges();
  ctx.log.info(`push: ${id} → ${res.remote} ${res.branch} at ${res.head}`);
  const openPr = 'Open Pull Request';
  const done = `Berth: pushed ${res.branch} (${short(res.head)}) to ${res.remote}.`;
  if (res.compareUrl) {
    const choice = await vscode.window.showInformationMessage(done, openPr);
    if (choice === openPr) await openExternal(res.compareUrl);
  } else {
    void vscode.window.showInformationMessage(done);
  }
  return res;
}

/**
 * The session works on the branch it was started on: pushing as is would update that branch on the
 * remote. Ask: a branch of its own (for a pull request), or onto that branch. null: the work branch.
 */
async function choosePushTarget(ctx: CommandContext, view: SessionView, changes: ChangesSummary): Promise<string | null | undefined> {
  const own = ctx.deliveries.pushed(view.id)?.branch ?? ownBranch(view, changes);
  const picked = await vscode.window.showQuickPick(
    [
      { label: `$(git-branch) Push to the branch ${own}`, detail: 'A branch of its own on the remote, for a pull request.', branch: own },
      {
        label: `$(repo-push) Push onto ${changes.branch}`,
        detail: `Updates ${changes.branch} on the remote itself (only if it has not moved since the session started).`,
        branch: null,
      },
    ],
    { title: `Berth: Push Branch — ${totals(changes.files.length, changes.additions, changes.deletions)}`, placeHolder: 'Where should the session\'s work go?', ignoreFocusOut: true },
  );
  return picked ? picked.branch : undefined;
}

/** The remote's "new pull request" page for the session's branch; pushes first when the branch is behind. */
export async function openPullRequest(ctx: CommandContext, arg?: unknown): Promise<void> {
  const { id, view } = await resolveTarget(ctx, arg);
  const changes = requireChanges(view);
  const known = ctx.deliveries.pushed(id);
  let pushed: PushResponse | undefined = known && known.head === changes.head && changes.pushed?.head === changes.head ? known : undefined;
  // A pull request needs a branch of its own, not the one the session started from.
  pushed ??= await pushBranchQuietly(ctx, id, changes.branch === view.repo.branch ? (known?.branch ?? ownBranch(view, changes)) : undefined);
  if (!pushed) return;
  if (!pushed.compareUrl) {
    void vscode.window.showInformationMessage(`Berth: ${pushed.remote} is not on GitHub, GitLab or Bitbucket, so there is no pull request page; the work is on its branch ${pushed.branch}.`);
    return;
  }
  await openExternal(pushed.compareUrl);
}

/** A push for Open Pull Request: the same as Push Branch, without its own "Open Pull Request" question. */
async function pushBranchQuietly(ctx: CommandContext, id: string, branch: string | undefined): Promise<PushResponse | undefined> {
  const { api, view } = await resolveTarget(ctx, id);
  const changes = requireChanges(view);
  const target = branch ?? changes.branch;
  try {
    const res = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `Berth: pushing ${target} before opening the pull request…` },
      () => api.push(id, branch),
    );
    await ctx.deliveries.setPushed(id, { ...res, at: new Date().toISOString() });
    if (ctx.controller.sessionId === id) void ctx.controller.refreshChanges();
    return res;
  } catch (err) {
    if (err instanceof ApiError && err.code === 'push_rejected') {
      void vscode.window.showErrorMessage(`Berth: ${rejectedText(err.message)} Use "Berth: Push Branch" to push to another branch.`);
      return undefined;
    }
    const needed = err instanceof ApiError && err.code === 'push_failed' ? credentialNeeded(view.repo.url, err) : null;
    if (needed) {
      await offerCredential(ctx, needed.host, `the push of ${target}`, { label: 'Open Pull Request', run: () => openPullRequest(ctx, id) });
      return undefined;
    }
    throw err;
  }
}

/** The server's reason, with what a non-fast-forward means for the user. */
function rejectedText(message: string): string {
  const why = /fetch first|non-fast-forward|stale info/i.test(message)
    ? ' The branch on the remote has commits the session\'s work does not include, and Berth never force-pushes.'
    : '';
  return `${message.replace(/\.?$/, '.')}${why}`;
}

async function openExternal(url: string): Promise<void> {
  const uri = vscode.Uri.parse(url, true);
  if (uri.scheme !== 'https' && uri.scheme !== 'http') throw new Error(`Not opening ${url}: not a web address.`);
  await vscode.env.openExternal(uri);
}
