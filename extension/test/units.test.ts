// Small vscode-free pieces: CSP, status bar presentation, start request, redaction, server URLs.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { buildStartRequest, splitBranch } from '../src/commands/startRequest';
import { REDACTED, RedactingLogger, type Logger } from '../src/logger';
import { normalizeServerUrl } from '../src/serverUrl';
import { initialState, reduce, type SessionAction } from '../src/session/stateMachine';
import { presentStatus } from '../src/statusBarModel';
import { chatHtml, contentSecurityPolicy, createNonce } from '../src/views/webviewHtml';

describe('webview HTML and CSP', () => {
  it('allows only the extension origin and the nonce', () => {
    const csp = contentSecurityPolicy('https://*.vscode-cdn.net', 'abc123');
    const directives = Object.fromEntries(csp.split(';').map((d) => d.trim().split(/\s+/)).map(([k, ...v]) => [k, v]));
    assert.deepEqual(directives['default-src'], ["'none'"]);
    assert.deepEqual(directives['script-src'], ["'nonce-abc123'"]);
    assert.deepEqual(directives['style-src'], ['https://*.vscode-cdn.net', "'nonce-abc123'"]);
    assert.deepEqual(directives['img-src'], ['https://*.vscode-cdn.net', 'data:']);
    assert.ok(!csp.includes('unsafe-inline') && !csp.includes('unsafe-eval') && !csp.includes('https:;'));
  });

  it('puts the nonce on the script and no inline script in the page', () => {
    const nonce = createNonce();
    const html = chatHtml({ cspSource: 'vscode-resource:', nonce, scriptUri: 'vscode-resource:/w.js', styleUri: 'vscode-resource:/c.css' });
    const scripts = [...html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)];
    assert.equal(scripts.length, 1);
    assert.match(scripts[0]![1]!, new RegExp(`nonce="${nonce}"`));
    assert.equal(scripts[0]![2]!.trim(), '', 'no inline script body');
    assert.match(html, /http-equiv="Content-Security-Policy"/);
    assert.notEqual(createNonce(), nonce, 'a new nonce per page');
    assert.ok(nonce.length >= 20);
  });
});

describe('status bar presentation', () => {
  const ID = 'ses_aaaaaaaaaaaaaaaaaaaaaaaa';
  const act = (...actions: SessionAction[]) => actions.reduce(reduce, initialState);
  const start: SessionAction[] = [
    { type: 'start_requested', repo: { url: 'u' }, prompt: 'p' },
    { type: 'start_accepted', sessionId: ID, status: 'preparing' },
  ];
  const prep = (step: 'clone' | 'setup' | 'ready', state: 'started' | 'done' = 'started'): SessionAction => ({
    type: 'event',
    event: { id: 0, sessionId: ID, type: 'preparing', ts: 't', data: { step, state, message: step, elapsedMs: 1 } },
  });

  it('is hidden without a session', () => {
    assert.equal(presentStatus(initialState).visible, false);
  });

  it('follows every preparing step with a spinner and never clears while preparing', () => {
    assert.equal(presentStatus(act(...start, prep('clone'))).text, '$(sync~spin) Berth: cloning…');
    const later = act(...start, prep('clone'), prep('clone', 'done'), prep('setup'));
    assert.equal(presentStatus(later).text, '$(sync~spin) Berth: running setup…');
    assert.equal(presentStatus(later).visible, true);
  });

  it('shows a check when ready and an error item that opens the chat on the error when failed', () => {
    assert.equal(presentStatus(act(...start, prep('ready', 'done'))).text, '$(check) Berth: ready');
    const failed = presentStatus(
      act(...start, { type: 'event', event: { id: 0, sessionId: ID, type: 'preparing', ts: 't', data: { step: 'failed', state: 'failed', message: 'disk full', elapsedMs: 1 } } }),
    );
    assert.equal(failed.text, '$(error) Berth: failed');
    assert.equal(failed.error, true);
    assert.equal(failed.action, 'revealError');
    assert.match(failed.tooltip, /disk full/);
  });
});

describe('start request', () => {
  it('builds a valid auto-initiate request', () => {
    const r = buildStartRequest({ repoUrl: ' https://e.com/r.git ', branch: 'dev', prompt: ' fix it ', setup: ['npm ci', '  '], autoInitiate: true });
    assert.deepEqual(r, { ok: true, request: { repo: { url: 'https://e.com/r.git', branch: 'dev' }, prompt: 'fix it', setup: ['npm ci'], autoInitiate: true } });
  });
  it('refuses what the server would refuse', () => {
    assert.equal(buildStartRequest({ repoUrl: '', prompt: 'x', autoInitiate: true }).ok, false);
    assert.equal(buildStartRequest({ repoUrl: 'u', prompt: '  ', autoInitiate: true }).ok, false);
    assert.equal(buildStartRequest({ repoUrl: 'u', prompt: 'x', setup: Array(33).fill('a'), autoInitiate: true }).ok, false);
  });
  it('without auto-initiate the prompt is optional', () => {
    const r = buildStartRequest({ repoUrl: 'u', prompt: '', autoInitiate: false });
    assert.deepEqual(r, { ok: true, request: { repo: { url: 'u' } } });
  });
  it('splits url#branch', () => {
    assert.deepEqual(splitBranch('https://e.com/r.git#main'), ['https://e.com/r.git', 'main']);
    assert.deepEqual(splitBranch('https://e.com/r.git'), ['https://e.com/r.git', undefined]);
    assert.deepEqual(splitBranch('https://e.com/r.git#'), ['https://e.com/r.git', undefined]);
  });
});

describe('secrets', () => {
  it('the redacting logger blanks registered tokens on every level', () => {
    const lines: string[] = [];
    const sink: Logger = {
      trace: (m) => lines.push(m),
      debug: (m) => lines.push(m),
      info: (m) => lines.push(m),
      warn: (m) => lines.push(m),
      error: (m) => lines.push(String(m)),
    };
    const log = new RedactingLogger(sink);
    const token = 'berth_AbCdEfGhIjKlMnOpQrStUv';
    log.addSecret(token);
    log.info(`Authorization: Bearer ${token}`);
    log.debug(`url?t=${token}&x`);
    log.error(new Error(`failed with ${token}`));
    assert.equal(lines.length, 3);
    for (const line of lines) {
      assert.ok(!line.includes(token), line);
      assert.ok(line.includes(REDACTED));
    }
    log.removeSecret(token);
    log.warn(token);
    assert.equal(lines.at(-1), token);
  });

  it('server URLs: http(s) only, no credentials in them', () => {
    assert.equal(normalizeServerUrl('https://berth.example.com/'), 'https://berth.example.com');
    assert.equal(normalizeServerUrl(' http://127.0.0.1:8717/api// '), 'http://127.0.0.1:8717/api');
    assert.equal(normalizeServerUrl('https://user:pass@berth.example.com'), null);
    assert.equal(normalizeServerUrl('https://berth.example.com/?token=x'), null);
    assert.equal(normalizeServerUrl('file:///etc'), null);
    assert.equal(normalizeServerUrl('not a url'), null);
  });
});
