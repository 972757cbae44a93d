// The message input. Disabled (with the reason shown) until the session is ready and during a turn.
// Enter sends, Shift+Enter inserts a newline; the draft survives re-renders and hiding.
import type { ChatViewState } from '@berth/protocol';
import { h } from './dom';

export interface ComposerActions {
  send(text: string): void;
  interrupt(): void;
  draftChanged(text: string): void;
}

export class Composer {
  readonly textarea = h('textarea', {
    class: 'composer-input',
    attrs: { rows: '3', 'aria-label': 'Message to the agent', placeholder: 'Ask the agent… (Enter to send, Shift+Enter for a new line)' },
  });
  private readonly sendButton = h('vscode-button', { text: 'Send', attrs: { 'aria-label': 'Send message' } });
  private readonly stopButton = h('vscode-button', { text: 'Stop turn', attrs: { secondary: true, 'aria-label': 'Stop the current turn' } });
  private readonly reason = h('div', { class: 'composer-reason', attrs: { id: 'composer-reason', 'aria-live': 'polite' } });
  readonly element = h(
    'form',
    { class: 'composer', attrs: { 'aria-label': 'Send a message' } },
    this.textarea,
    h('div', { class: 'composer-bar' }, this.reason, h('div', { class: 'composer-buttons' }, this.stopButton, this.sendButton)),
  );
  private enabled = false;

  constructor(private readonly actions: ComposerActions, draft: string) {
    this.textarea.value = draft;
    this.textarea.setAttribute('aria-describedby', 'composer-reason');
    this.textarea.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        this.submit();
      }
    });
    this.textarea.addEventListener('input', () => actions.draftChanged(this.textarea.value));
    this.element.addEventListener('submit', (e) => {
      e.preventDefault();
      this.submit();
    });
    this.sendButton.addEventListener('click', () => this.submit());
    this.stopButton.addEventListener('click', () => actions.interrupt());
  }

  update(state: ChatViewState): void {
    const unlocked = !this.enabled && state.input.enabled;
    this.enabled = state.input.enabled;
    this.textarea.disabled = !this.enabled;
    // Disabling dropped the focus; give it back when the turn ends, unless the user moved elsewhere.
    if (unlocked && (document.activeElement === document.body || document.activeElement === null)) this.textarea.focus();
    this.sendButton.disabled = !this.enabled;
    this.sendButton.setAttribute('aria-disabled', String(!this.enabled));
    this.reason.textContent = state.input.enabled ? (state.session?.status === 'sleeping' ? 'The sandbox is asleep: your message resumes it.' : '') : state.input.reason;
    this.stopButton.hidden = !state.canInterrupt;
    this.element.hidden = state.session === null;
  }

  focus(): void {
    this.textarea.focus();
  }

  /** Puts back a message that was not sent, ahead of anything typed since. */
  restore(text: string): void {
    this.textarea.value = mergeDraft(text, this.textarea.value);
    this.actions.draftChanged(this.textarea.value);
  }

  private submit(): void {
    const text = this.textarea.value.trim();
    if (!this.enabled || !text) return;
    this.actions.send(text);
    this.textarea.value = '';
    this.actions.draftChanged('');
  }
}

/** The returned message first; what was typed meanwhile is kept after it (once, if it is the same text). */
export function mergeDraft(returned: string, typed: string): string {
  const rest = typed.trim();
  if (!rest || rest === returned.trim()) return returned;
  return `${returned}\n\n${typed}`;
}
