// Pure formatting helpers of the chat view (no DOM), shared by the components and unit-tested.
import { PROGRESS_STEP_LABELS, type AppliedWork, type ChangesSummary, type ChatItem, type FileChangeStatus, type ProgressStep, type SessionStatus, type StepViewState, type TokenUsage } from '@berth/protocol';

export function formatElapsed(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  const seconds = ms / 1000;
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const minutes = Math.floor(seconds / 60);
  return `${minutes} min ${Math.floor(seconds % 60)} s`;
}

const count = new Intl.NumberFormat('en-US');

/** `1,234 tokens (1,200 in, 34 out)`: what the model endpoint reported. */
export function formatTokens(usage: TokenUsage): string {
  return `${count.format(usage.promptTokens + usage.completionTokens)} tokens (${count.format(usage.promptTokens)} in, ${count.format(usage.completionTokens)} out)`;
}

/** The reported tokens of all turns in the conversation; null when none reported any. */
export function sessionTokens(items: readonly ChatItem[]): TokenUsage | null {
  let promptTokens = 0;
  let completionTokens = 0;
  let reported = false;
  for (const item of items) {
    if (item.kind !== 'turn' || !item.usage) continue;
    reported = true;
    promptTokens += item.usage.promptTokens;
    completionTokens += item.usage.completionTokens;
  }
  return reported ? { promptTokens, completionTokens } : null;
}

export function stepTitle(step: ProgressStep): string {
  const label = PROGRESS_STEP_LABELS[step];
  return label.charAt(0).toUpperCase() + label.slice(1);
}

/** Text equivalents of the step icons, for screen readers. */
export const STEP_STATE_TEXT: Record<StepViewState, string> = {
  pending: 'pending',
  running: 'running',
  done: 'done',
  skipped: 'skipped',
  failed: 'failed',
};

export const STATUS_TEXT: Record<SessionStatus, string> = {
  preparing: 'Preparing',
  ready: 'Ready',
  running: 'Working',
  sleeping: 'Sleeping',
  failed: 'Failed',
};

/** `https://github.com/acme/app.git` → `acme/app`; anything else is shown as given, shortened. */
export function shortRepo(url: string): string {
  const match = /[/:]([^/:]+\/[^/]+?)(?:\.git)?\/?$/.exec(url);
  const name = match?.[1] ?? url;
  return name.length > 60 ? `…${name.slice(-59)}` : name;
}

/** `src/lib/app.ts` → `['app.ts', 'src/lib']`: the name first, its folder after (as VS Code lists files). */
export function splitPath(path: string): [name: string, dir: string] {
  const at = path.lastIndexOf('/');
  return at < 0 ? [path, ''] : [path.slice(at + 1), path.slice(0, at)];
}

export const FILE_STATUS_LETTER: Record<FileChangeStatus, string> = { added: 'A', modified: 'M', deleted: 'D', renamed: 'R' };

export function fileCount(n: number): string {
  return `${n} file${n === 1 ? '' : 's'}`;
}

/** The one-line state of the session's work: where it went (pushed, applied) and whether that is current. */
export function deliveryText(changes: ChangesSummary, applied: AppliedWork | null): string[] {
  const out: string[] = [];
  if (changes.pushed) out.push(changes.pushed.head === changes.head ? `Pushed to ${changes.pushed.branch}` : `Pushed to ${changes.pushed.branch} before the latest changes`);
  if (applied) {
    const where = applied.how === 'branch' ? `as branch ${applied.branch ?? ''}`.trim() : 'to the working tree';
    out.push(applied.head === changes.head ? `Applied ${where}` : `Applied ${where} before the latest changes`);
  }
  return out;
}
