// The in-editor integration suite: runs inside a real VS Code extension host (@vscode/test-electron)
// and uses the extension through the VS Code API, against the embedded local server.
const assert = require('node:assert/strict');
const { readFile } = require('node:fs/promises');
const path = require('node:path');
const vscode = require('vscode');

async function waitFor(what, probe, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  let lastError = null;
  for (;;) {
    try {
      const value = await probe();
      if (value) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${lastError ? `: ${lastError.message}` : ''}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function check(name, fn) {
  const started = Date.now();
  await fn();
  console.log(`integration: ok - ${name} (${Date.now() - started} ms)`);
}

exports.run = async function run() {
  const ext = vscode.extensions.getExtension('berth.berth');
  await check('the extension activates and contributes its commands and settings', async () => {
    assert.ok(ext, 'berth.berth is loaded in the extension development host');
    await ext.activate();
    const commands = await vscode.commands.getCommands(true);
    for (const id of ['berth.startSession', 'berth.openSession', 'berth.stopSession', 'berth.deleteSession', 'berth.reviewChanges', 'berth.applyChanges', 'berth.pushBranch', 'berth.openPullRequest', 'berth.retry', 'berth.signIn', 'berth.showLogs']) {
      assert.ok(commands.includes(id), `${id} is registered`);
    }
    const config = vscode.workspace.getConfiguration('berth');
    assert.equal(config.get('autoInitiate'), true);
    assert.equal(config.get('serverUrl'), '');
  });

  // serverUrl is empty: the extension runs the bundled server and records it in server.json.
  const dataDir = path.join(process.env.BERTH_IT_USER_DATA, 'User', 'globalStorage', 'berth.berth', 'server');
  let server;
  await check('the embedded local server starts on loopback', async () => {
    server = await waitFor('server.json', async () => JSON.parse(await readFile(path.join(dataDir, 'server.json'), 'utf8')), 60_000);
    assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+$/);
  });
  const token = (await readFile(path.join(dataDir, 'token'), 'utf8')).trim();
  const api = async (route) => (await fetch(server.url + route, { headers: { authorization: `Bearer ${token}` } })).json();

  await check('Start Session (scripted arguments) reaches ready only after the first prompt', async () => {
    const sessionId = await vscode.commands.executeCommand('berth.startSession', {
      repoUrl: process.env.BERTH_IT_REPO,
      prompt: 'hello from the integration suite',
      setup: [],
    });
    assert.ok(typeof sessionId === 'string' && sessionId.length > 0, `a session id (got ${sessionId})`);
    const session = await waitFor('ready', async () => {
      const s = await api(`/v1/sessions/${sessionId}`);
      const view = s.session ?? s;
      return view.status === 'ready' ? view : null;
    }, 120_000);
    assert.ok(session.initiatedAt, 'initiated before ready');
  });
};
