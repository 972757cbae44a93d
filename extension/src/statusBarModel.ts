// What the status bar item shows for a session state (pure; statusBar.ts applies it).
import type { SessionStatus } from '@berth/protocol';
import type { SessionMachineState } from './session/stateMachine';
import { DISCONNECTED_REASON, stepLabel } from './session/stateMachine';

/** The codicon of each session status, for session lists (quick pick, Sessions view). */
export const STATUS_CODICONS: Record<SessionStatus, string> = {
  preparing: 'sync~spin',
  ready: 'check',
  running: 'comment-discussion',
  sleeping: 'debug-pause',
  failed: 'error',
};

export interface StatusBarPresentation {
  visible: boolean;
  text: string;
  tooltip: string;
  /** Whether to use the error background colour. */
  error: boolean;
  /** Whether to use the warning background colour (the connection to the server is down). */
  warning: boolean;
  /** What a click does. */
  action: 'openChat' | 'revealError';
}

const hidden: StatusBarPresentation = { visible: false, text: '', tooltip: '', error: false, warning: false, action: 'openChat' };

/** No auto-clear: the item stays as long as the state it shows. */
export function presentStatus(state: SessionMachineState): StatusBarPresentation {
  const s = state.session;
  if (!s) return hidden;
  const base = { visible: true, error: false, warning: false, action: 'openChat' as const };
  // While the stream is down the session's status is unknown: never claim ready (the input is locked too).
  if (state.connection === 'reconnecting') {
    return {
      ...base,
      warning: true,
      text: '$(sync~spin) Berth: reconnecting…',
      tooltip: 'Lost the connection to the Berth server; reconnecting. Click to open the chat.',
    };
  }
  if (state.connection === 'closed') {
    return { ...base, warning: true, text: '$(debug-disconnect) Berth: disconnected', tooltip: `${DISCONNECTED_REASON} Click to open the chat.` };
  }
  switch (s.status) {
    case 'preparing': {
      const running = s.steps.find((step) => step.state === 'running');
      return {
        ...base,
        text: `$(sync~spin) Berth: ${stepLabel(s.step)}…`,
        tooltip: `${s.resume ? 'Resuming' : 'Preparing'} the session${running?.message ? `: ${running.message}` : ''}. Click to open the chat.`,
      };
    }
    case 'ready':
      return s.activeTurnId
        ? { ...base, text: '$(sync~spin) Berth: working…', tooltip: 'The agent is working on a turn. Click to open the chat.' }
        : { ...base, text: '$(check) Berth: ready', tooltip: 'The session is ready. Click to open the chat.' };
    case 'running':
      return { ...base, text: '$(sync~spin) Berth: working…', tooltip: 'The agent is working on a turn. Click to open the chat.' };
    case 'sleeping':
      return { ...base, text: '$(debug-pause) Berth: sleeping', tooltip: 'The sandbox was reaped; your next message resumes it.' };
    case 'failed':
      return {
        visible: true,
        text: '$(error) Berth: failed',
        tooltip: `${s.error?.message ?? 'The session failed'}. Click to see the error and retry.`,
        error: true,
        warning: false,
        action: 'revealError',
      };
  }
}
