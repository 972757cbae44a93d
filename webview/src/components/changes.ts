// The session's work in the chat: a card per checkpoint (the files one turn changed, each opening
// its diff; Review, Apply, Push) and the cumulative summary above the composer.
import type { AppliedWork, ChangedFile, ChangesSummary, ChatItem } from '@berth/protocol';
import { deliveryText, FILE_STATUS_LETTER, fileCount, splitPath } from '../format';
import { h } from './dom';

export interface ChangesActions {
  /** null: the whole session (base → head). */
  review(range: { from: string; to: string } | null): void;
  openFile(from: string, to: string, path: string): void;
  apply(): void;
  push(): void;
  openPullRequest(): void;
}

type ChangesItem = Extract<ChatItem, { kind: 'changes' }>;

/** Files listed before the rest fold away. */
const SHOWN_FILES = 8;

export function renderChangesCard(item: ChangesItem, actions: ChangesActions): HTMLElement {
  const title = item.reason === 'stop' ? `Saved when the sandbox stopped: ${fileCount(item.files.length)}` : `Changed ${fileCount(item.files.length)}`;
  const open = (path: string) => actions.openFile(item.from, item.to, path);
  const shown = item.files.slice(0, SHOWN_FILES);
  const rest = item.files.slice(SHOWN_FILES);
  return h(
    'section',
    { class: 'changes-card', attrs: { 'aria-label': title, 'data-from': item.from, 'data-to': item.to } },
    h('div', { class: 'changes-head' }, h('span', { class: 'changes-title', text: title }), totals(item.additions, item.deletions)),
    fileList(shown, open),
    rest.length > 0 && h('details', { class: 'changes-more' }, h('summary', { text: `${fileCount(rest.length)} more` }), fileList(rest, open)),
    item.skipped.length > 0 &&
      h(
        'div',
        { class: 'changes-skipped' },
        h('span', { text: 'Not recorded: ' }),
        h('span', {
          text: item.skipped.map((s) => `${s.path} (${s.reason === 'too_large' ? `too large${s.size ? `, ${formatBytes(s.size)}` : ''}` : 'a nested repository'})`).join(', '),
        }),
      ),
    item.files.length > 0 &&
      h(
        'div',
        { class: 'changes-buttons' },
        h('vscode-button', {
          class: 'changes-review',
          text: 'Review',
          attrs: { title: 'Open these changes in the multi-file diff editor' },
          on: { click: () => actions.review({ from: item.from, to: item.to }) },
        }),
        h('vscode-button', {
          class: 'changes-apply',
          text: 'Apply…',
          attrs: { secondary: true, title: 'Bring all of the session\'s work into your workspace: as a branch, or onto the working tree' },
          on: { click: () => actions.apply() },
        }),
        h('vscode-button', {
          class: 'changes-push',
          text: 'Push',
          attrs: { secondary: true, title: 'Push the session\'s work branch to the repository\'s remote' },
          on: { click: () => actions.push() },
        }),
      ),
  );
}

function fileList(files: ChangedFile[], open: (path: string) => void): HTMLElement {
  return h(
    'ul',
    { class: 'changes-files' },
    ...files.map((file) => {
      const [name, dir] = splitPath(file.path);
      const label = `${file.status} ${file.path}${file.oldPath ? ` (from ${file.oldPath})` : ''}`;
      return h(
        'li',
        {},
        h(
          'button',
          { class: 'changes-file', attrs: { type: 'button', title: `Open the diff of ${file.path}`, 'aria-label': `${label}: open the diff`, 'data-path': file.path }, on: { click: () => open(file.path) } },
          h('span', { class: `file-status file-status--${file.status}`, text: FILE_STATUS_LETTER[file.status], attrs: { 'aria-hidden': 'true' } }),
          h('span', { class: 'file-name', text: name }),
          h('span', { class: 'file-dir', text: file.oldPath ? `${dir} ← ${file.oldPath}` : dir }),
          file.binary ? h('span', { class: 'file-counts', text: 'binary' }) : totals(file.additions, file.deletions, 'file-counts'),
        ),
      );
    }),
  );
}

function totals(additions: number, deletions: number, cls = 'changes-totals'): HTMLElement {
  return h(
    'span',
    { class: cls, attrs: { 'aria-label': `${additions} lines added, ${deletions} removed` } },
    h('span', { class: 'count-add', text: `+${additions}` }),
    ' ',
    h('span', { class: 'count-del', text: `−${deletions}` }),
  );
}

/** The session's whole work, above the composer: totals, where it went, and the actions. */
export function renderChangesSummary(changes: ChangesSummary | null, applied: AppliedWork | null, repoBranch: string | undefined, actions: ChangesActions): Node[] {
  if (!changes || changes.head === changes.base || changes.files.length === 0) return [];
  const delivered = deliveryText(changes, applied);
  const pushedNow = changes.pushed?.head === changes.head;
  const link = (text: string, cls: string, title: string, run: () => void) =>
    h('button', { class: `summary-action ${cls}`, text, attrs: { type: 'button', title }, on: { click: run } });
  return [
    h(
      'div',
      { class: 'summary-line' },
      h('span', { class: 'summary-title', text: `${fileCount(changes.files.length)} changed` }),
      totals(changes.additions, changes.deletions),
      // The work branch, when it is a branch of its own (not the one the session was started on).
      changes.branch !== repoBranch && h('span', { class: 'summary-branch', text: changes.branch, attrs: { title: `The session's work branch: ${changes.branch}` } }),
    ),
    delivered.length > 0 && h('div', { class: 'summary-delivered', text: delivered.join(' · ') }),
    h(
      'div',
      { class: 'summary-actions' },
      link('Review all', 'summary-review', 'Every change of the session (from the commit it started at) in the multi-file diff editor', () => actions.review(null)),
      link('Apply…', 'summary-apply', 'Bring the session\'s work into your workspace: as a branch, or onto the working tree', () => actions.apply()),
      !pushedNow && link('Push', 'summary-push', 'Push the session\'s work branch to the repository\'s remote', () => actions.push()),
      link('Open pull request', 'summary-pr', 'Open the remote\'s new pull request page for the work branch (pushes first if needed)', () => actions.openPullRequest()),
    ),
  ].filter((n): n is HTMLDivElement => !!n);
}

function formatBytes(bytes: number): string {
  if (bytes < 1024 * 1024) return `${Math.round(bytes / 1024)} KiB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
}
