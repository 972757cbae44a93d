// What the chat shows with no session: signed out, the local server starting, or nothing open yet.
import type { AuthState, WebviewCommand } from '@berth/protocol';
import { h } from './dom';

export function renderWelcome(auth: AuthState, run: (command: WebviewCommand) => void): HTMLElement {
  const button = (label: string, command: WebviewCommand, secondary = false) =>
    h('vscode-button', { text: label, attrs: { secondary }, on: { click: () => run(command) } });
  switch (auth) {
    case 'signed_out':
      return h(
        'section',
        { class: 'welcome' },
        h('h2', { text: 'Sign in to Berth' }),
        h('p', { text: 'Connect to a Berth server with its URL and a token. Leave the server URL setting empty to use the built-in local server.' }),
        h('div', { class: 'welcome-buttons' }, button('Sign In', 'signIn'), button('Show Logs', 'showLogs', true)),
      );
    case 'starting_server':
      return h(
        'section',
        { class: 'welcome' },
        h('div', { class: 'welcome-busy' }, h('vscode-progress-ring', { attrs: { 'aria-hidden': 'true' } }), h('span', { text: 'Starting the local Berth server…' })),
      );
    case 'signed_in':
      return h(
        'section',
        { class: 'welcome' },
        h('h2', { text: 'No session open' }),
        h('p', { text: 'Start a session on this repository: Berth answers at once and prepares a fresh sandbox in the background.' }),
        h('div', { class: 'welcome-buttons' }, button('Start Session', 'startSession'), button('Open Session', 'openSession', true)),
      );
  }
}
