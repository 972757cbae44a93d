// What to tell about sessions the user is not looking at: a turn finished (with Review Changes when
// it changed files), a preparation or session failed, a session waits for its first prompt.
import type { SessionView } from '@berth/protocol';

/** The `berth.notifications` setting. */
export type NotificationLevel = 'all' | 'failures' | 'off';

export type NoticeAction = 'Open' | 'Review Changes';

export interface SessionNotice {
  severity: 'info' | 'error';
  message: string;
  actions: NoticeAction[];
}

export interface NoticeContext {
  level: NotificationLevel;
  /** Whether the VS Code window has the focus. */
  focused: boolean;
  /** The session shown in the chat, if any. */
  openSessionId: string | null;
}

const label = (s: SessionView) => {
  const first = s.prompt?.split('\n')[0]?.trim() ?? '';
  return `“${first ? (first.length > 50 ? `${first.slice(0, 49)}…` : first) : s.id}”`;
};

/** What to tell about a session that went from `prev` to `next`, or null to stay quiet. */
export function noticeFor(prev: SessionView | undefined, next: SessionView, ctx: NoticeContext): SessionNotice | null {
  if (ctx.level === 'off') return null;
  // Someone looking at this very session sees it in the chat already.
  if (ctx.focused && ctx.openSessionId === next.id) return null;
  if (next.status === 'failed' && prev?.status !== 'failed') {
    return { severity: 'error', message: `Berth: ${label(next)} failed: ${next.lastError?.message ?? 'unknown error'}`, actions: ['Open'] };
  }
  if (ctx.level === 'failures' || !prev) return null;
  if (next.status !== 'ready') return null;
  // A turn ended: one that ran after preparation, or the first prompt done before preparation settled.
  const firstPrompt = prev.status === 'preparing' && !prev.preparedAt && !!next.initiatedAt;
  if (prev.status === 'running' || firstPrompt) {
    const changes = next.changes;
    const changed = !!changes && changes.head !== prev.changes?.head && changes.head !== changes.base && changes.files.length > 0;
    const what = changed ? ` and changed ${changes.files.length} file${changes.files.length === 1 ? '' : 's'}` : '';
    return { severity: 'info', message: `Berth: ${label(next)} finished its turn${what}.`, actions: changed ? ['Open', 'Review Changes'] : ['Open'] };
  }
  // A first start without a prompt (a resume that settled on ready is the user's own doing: quiet).
  if (prev.status === 'preparing' && !prev.preparedAt && !next.initiatedAt) {
    return { severity: 'info', message: `Berth: ${label(next)} is ready for your prompt.`, actions: ['Open'] };
  }
  return null;
}

