// The scenarios of issue 6, each asserting what a person sees in the workbench.
// They share one workbench and run in order; `needs` names scenarios whose session they continue.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { createBerthServer, freePort, instanceTag, tempDir, onCleanup, removeContainers, writeProfileSettings } from './harness.mjs';
import { Workbench } from './workbench.mjs';

/** The most the chat may take from Enter to showing the step list (issue 6: 300 ms). */
const INSTANT_MS = Number(process.env.BERTH_E2E_INSTANT_MS ?? 300);

const last = (list) => list[list.length - 1] ?? '';

/** The order the server's provider runs the steps in (server/src/preparation/pipeline.ts stepOrder). */
const STEP_ORDER = {
  devcontainer: ['disk_check', 'clone', 'branch', 'sandbox', 'setup', 'agent_start', 'session_import', 'initiate'],
  local: ['disk_check', 'clone', 'branch', 'setup', 'sandbox', 'agent_start', 'session_import', 'initiate'],
};

/** Samples the status bar every 50 ms until stopped (to prove it never clears while preparing). */
function sampleStatus(wb) {
  const samples = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const at = Date.now();
      try {
        const [status, chat] = await Promise.all([wb.status(), wb.chatSnapshot().catch(() => null)]);
        samples.push({ at, ...status, chat });
        await wb.page.waitForTimeout(50);
      } catch {
        running = false; // the page went away (a failed run is cleaning up)
      }
    }
  })();
  return {
    samples,
    async stop() {
      running = false;
      await loop;
      return samples;
    },
  };
}

/** Records, inside the chat frame, when the step list first appears (no polling delay in the figure). */
async function watchStepList(wb) {
  await wb.chat.locator('body .app').waitFor({ timeout: 30_000 });
  await wb.chat.locator('body').evaluate((body) => {
    delete body.dataset.stepsAt;
    const seen = () => {
      if (body.querySelector('.preparation > .steps .step') && !body.dataset.stepsAt) body.dataset.stepsAt = String(Date.now());
    };
    new MutationObserver(seen).observe(body, { childList: true, subtree: true });
  });
  await wb.page.evaluate(() => {
    window.__berthEnterAt = 0;
    document.addEventListener(
      'keydown',
      (e) => {
        if (e.key === 'Enter' && !window.__berthEnterAt) window.__berthEnterAt = Date.now();
      },
      { capture: true },
    );
  });
}

/** The open multi-file diff editor: its title and, per file, its label and the text of both sides. */
function multiDiff(page) {
  return page.evaluate(() => {
    const root = document.querySelector('.monaco-component.multiDiffEditor');
    const tab = document.querySelector('.tabs-container .tab.active');
    const text = (el) => (el?.textContent ?? '').replace(/\u00a0/g, ' ');
    // Monaco's lines are absolutely positioned divs: in order of their offset, one per line.
    const lines = (el) =>
      [...(el?.querySelectorAll('.view-line') ?? [])]
        .sort((a, b) => parseFloat(a.style.top) - parseFloat(b.style.top))
        .map(text)
        .join('\n');
    return {
      title: text(tab).trim(),
      entries: root
        ? [...root.querySelectorAll('.multiDiffEntry')].map((entry) => ({
            label: text(entry.querySelector('.header')).trim(),
            original: lines(entry.querySelector('.editor.original .view-lines')),
            modified: lines(entry.querySelector('.editor.modified .view-lines')),
          }))
        : [],
    };
  });
}

/** An http remote that refuses everyone (401, Basic), and remembers the Authorization headers it was shown. */
function refusingRemote() {
  const authorizations = [];
  const server = createServer((req, res) => {
    if (req.headers.authorization) authorizations.push(req.headers.authorization);
    res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="private"', 'Content-Type': 'text/plain' });
    res.end('authentication required\n');
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, port: server.address().port, authorizations })));
}

/** The extension's own log (its LogOutputChannel's file in the profile). */
function extensionLog(t) {
  return spawnSync('sh', ['-c', `cat ${JSON.stringify(t.profile.data)}/logs/*/exthost*/berth.berth/Berth.log 2>/dev/null`], { encoding: 'utf8' }).stdout;
}

async function startWithPrompt(wb, { repoUrl, setup, prompt }) {
  await wb.startSessionUntilPrompt({ repoUrl, setup });
  await watchStepList(wb);
  await wb.input.fill(prompt);
  await wb.page.keyboard.press('Enter');
}

/**
 * A chat completions endpoint (OpenAI's streaming wire format) for the LLM agent: answers every
 * request with the model it was asked for, and reports usage. Listens where the sandbox can reach it
 * (a container reaches the host at the Docker bridge's gateway).
 */
async function fakeLlm(provider) {
  const host = provider === 'devcontainer' ? execFileSync('docker', ['network', 'inspect', 'bridge', '--format', '{{(index .IPAM.Config 0).Gateway}}'], { encoding: 'utf8' }).trim() : '127.0.0.1';
  const requests = [];
  const server = createServer((req, res) => {
    let raw = '';
    req.on('data', (c) => (raw += c));
    req.on('end', () => {
      const body = JSON.parse(raw || '{}');
      requests.push(body);
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const chunk = (data) => res.write(`data: ${JSON.stringify(data)}\n\n`);
      chunk({ choices: [{ index: 0, delta: { role: 'assistant', content: `answer from ${body.model}` } }] });
      chunk({ choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] });
      if (body.stream_options?.include_usage) chunk({ choices: [], usage: { prompt_tokens: 1200, completion_tokens: 34 } });
      res.end('data: [DONE]\n\n');
    });
  });
  await new Promise((resolve) => server.listen(0, host, resolve));
  onCleanup('the fake LLM endpoint', () => new Promise((resolve) => server.close(resolve)));
  return { url: `http://${host}:${server.address().port}/v1`, requests };
}

export const scenarios = [
  {
    id: 1,
    name: 'start: step list at once, input locked with a reason, spinning status bar that does not clear',
    async run(t) {
      const { wb } = t;
      // A short setup command keeps preparation long enough to be watched (a warm dev container is up in < 1 s).
      await startWithPrompt(wb, { repoUrl: t.repo.bare, setup: 'sleep 2', prompt: 'first prompt: say hello' });
      t.shared.sampler = sampleStatus(wb);
      const snap = await wb.waitForChat('the step list', (s) => s.steps.length > 0, 10_000);
      const enterAt = await wb.page.evaluate(() => window.__berthEnterAt);
      const stepsAt = Number(await wb.chat.locator('body').getAttribute('data-steps-at'));
      assert.ok(enterAt > 0 && stepsAt > 0, 'Enter and the step list were both timed');
      const ms = stepsAt - enterAt;
      t.timing('step list visible after Enter', ms);
      t.shared.enterAt = enterAt;
      await wb.screenshot('1-preparing');
      // The running step carries a visible spinner.
      const ring = await wb.chat.locator('body').evaluate((body) => {
        const el = body.querySelector('.preparation > .steps .step--running vscode-progress-ring');
        if (!el) return null;
        const r = el.getBoundingClientRect();
        const svg = el.shadowRoot?.querySelector('svg')?.getBoundingClientRect();
        return { width: r.width, height: r.height, svg: svg ? { width: svg.width, height: svg.height } : null };
      });
      t.note(`running step spinner: ${JSON.stringify(ring)}`);
      assert.ok(!ring || (ring.width >= 12 && ring.height >= 12 && ring.svg && ring.svg.width >= 12), `the running step's spinner is visible (${JSON.stringify(ring)})`);
      assert.equal(snap.inputDisabled, true, 'the input is disabled while preparing');
      assert.ok(snap.reason.length > 0, `the input shows why it is disabled (got "${snap.reason}")`);
      const spinningStep = (s) => s.visible && s.spinning && /Berth: .+…/.test(s.text);
      const status = t.shared.sampler.samples.find(spinningStep) ?? (await wb.waitForStatus('a spinning Berth step', spinningStep, 5000));
      t.note(`status bar while preparing: "${status.text}"`);
      assert.ok(ms <= INSTANT_MS, `the step list showed ${ms} ms after Enter (target ≤ ${INSTANT_MS} ms)`);
    },
  },
  {
    id: 2,
    name: 'ready only after the first prompt was accepted: output visible, input enabled, status bar ready',
    needs: [1],
    async run(t) {
      const { wb } = t;
      const snap = await wb.waitForChat('ready with the first answer', (s) => s.inputDisabled === false && /agent received: first prompt/.test(last(s.assistants)), 120_000);
      t.timing('Enter to input enabled (ready)', Date.now() - t.shared.enterAt);
      const samples = await t.shared.sampler.stop();
      const status = await wb.waitForStatus('ready', (s) => s.visible && /Berth: ready/.test(s.text) && !s.spinning, 10_000);
      assert.equal(status.icon, 'codicon-check');
      await wb.screenshot('2-ready');
      // From its first appearance (scenario 1 saw it spinning) until ready, the item never cleared,
      // and while the chat says preparing it spins and the input stays locked.
      const firstVisible = samples.findIndex((s) => s.visible);
      assert.ok(firstVisible >= 0, 'the status bar item was seen');
      const cleared = samples.slice(firstVisible).filter((s) => !s.visible);
      assert.equal(cleared.length, 0, `the status bar item never cleared (${cleared.length} of ${samples.length - firstVisible} samples without it)`);
      const preparing = samples.slice(firstVisible).filter((s) => s.chat && /prepar/i.test(s.chat.pill));
      assert.ok(preparing.length > 0, 'the chat was seen preparing');
      for (const s of preparing) {
        assert.ok(s.spinning && /…$/.test(s.text), `the status bar spins on a step while preparing (sample: ${JSON.stringify({ text: s.text, spinning: s.spinning })})`);
        assert.equal(s.chat.inputDisabled, true, 'the input stays locked until ready');
      }
      t.note(`status bar steps seen: ${[...new Set(samples.map((s) => s.text))].join(' → ')}`);
      // The input unlocked only with the first prompt accepted: the user message was already there.
      const unlocked = samples.find((s) => s.chat && s.chat.inputDisabled === false);
      if (unlocked) assert.ok(unlocked.chat.users.some((u) => /first prompt/.test(u)), 'the first prompt was in the conversation when the input unlocked');
      assert.deepEqual(snap.users, ['first prompt: say hello']);
      const { body } = await t.berth.api('GET', '/v1/sessions');
      const session = body.sessions?.[0] ?? body[0];
      assert.ok(session?.initiatedAt, 'the server recorded the initiate before ready');
      t.shared.firstSessionId = session.id ?? session.sessionId;
    },
  },
  {
    id: 3,
    name: 'a follow-up streams its answer; messages sent meanwhile are queued (one cancelled) and run after it, in order',
    needs: [2],
    async run(t) {
      const { wb } = t;
      const sentAt = Date.now();
      await wb.send('please stream');
      const partial = await wb.waitForChat('a partial answer', (s) => /chunk 1 of 6/.test(last(s.assistants)), 30_000);
      t.timing('follow-up: first chunk visible', Date.now() - sentAt);
      assert.doesNotMatch(last(partial.assistants), /stream finished/, 'the first chunk showed before the answer was complete');
      // The agent is busy: the input stays open and what is sent waits its turn.
      assert.equal(partial.inputDisabled, false, 'the input is open during the turn');
      await wb.send('queued one');
      await wb.waitForChat('the first queued message', (s) => s.queued.length === 1 && !s.inputDisabled, 10_000);
      await wb.send('queued two, then cancelled');
      const queued = await wb.waitForChat('two queued messages', (s) => s.queued.length === 2, 10_000);
      assert.deepEqual(queued.queued, ['queued one', 'queued two, then cancelled']);
      await wb.screenshot('3-queued');
      await wb.chat.locator('.msg--queued', { hasText: 'then cancelled' }).locator('.cancel-queued').click();
      await wb.waitForChat('the cancelled message gone', (s) => s.queued.length === 1, 10_000);
      const done = await wb.waitForChat(
        'the whole answer, then the queued message',
        (s) => s.turns.length === 3 && s.queued.length === 0 && /agent received: queued one/.test(last(s.assistants)),
        60_000,
      );
      t.timing('follow-up and the queued message: both answers', Date.now() - sentAt);
      assert.ok(done.assistants.some((a) => /stream finished/.test(a)), 'the streamed answer is complete');
      assert.deepEqual(done.users, ['first prompt: say hello', 'please stream', 'queued one'], 'in order; the cancelled one never ran');
    },
  },
  {
    id: 4,
    name: 'reconnect: the server restarts mid-session; no duplicates, no old progress',
    needs: [2],
    async run(t) {
      const { wb } = t;
      const before = await wb.chatSnapshot();
      // A message typed but not sent yet must survive the outage.
      const draft = 'typed while the server was away';
      await wb.chat.locator('textarea.composer-input').fill(draft);
      const sampler = sampleStatus(wb);
      await t.berth.stop();
      let restartAt = 0;
      try {
        const down = await wb.waitForChat('the reconnecting banner', (s) => s.connection !== '', 20_000);
        await wb.screenshot('4-reconnecting');
        assert.equal(down.inputDisabled, true, 'the input is locked while reconnecting');
        const downStatus = await wb.waitForStatus('reconnecting', (s) => /Berth: reconnecting/.test(s.text), 10_000);
        await wb.page.waitForTimeout(1000); // still down a while later: still locked, still not ready
        const stillDown = await wb.chatSnapshot();
        assert.equal(stillDown.inputDisabled, true, 'the input stays locked while the server is away');
        assert.match(stillDown.reason, /Reconnecting to the Berth server/, `the lock says why (got "${stillDown.reason}")`);
        assert.equal(stillDown.draft, draft, 'the unsent draft is kept in the input');
        assert.equal(stillDown.pillStale, true, `the "${stillDown.pill}" pill is shown as only the last known status`);
        const stillDownStatus = await wb.status();
        assert.ok(/reconnecting/.test(stillDownStatus.text) && !/ready/.test(stillDownStatus.text), `the status bar says reconnecting, not ready (${stillDownStatus.text})`);
        assert.ok(downStatus.spinning || downStatus.icon === 'codicon-warning', `with a spinning or warning icon (${JSON.stringify(downStatus)})`);
        t.note(`while the server is down: status bar "${stillDownStatus.text}", input reason "${stillDown.reason}"`);
      } catch (err) {
        await sampler.stop();
        throw err;
      } finally {
        // Back up whatever happened: the scenarios after this one need the server.
        restartAt = Date.now();
        await t.berth.start();
      }
      const back = await wb.waitForChat('reconnected and unlocked', (s) => s.connection === '' && s.inputDisabled === false, 30_000);
      t.timing('server restart to chat reconnected', Date.now() - restartAt);
      assert.equal(back.draft, draft, 'the draft is still there after the reconnect');
      assert.equal(back.pillStale, false);
      const samples = await sampler.stop();
      // One render shows both the banner and the composer: the input never looked usable while disconnected.
      const leaky = samples.filter((s) => s.chat && s.chat.connection !== '' && s.chat.inputDisabled !== true);
      assert.equal(leaky.length, 0, `the input was enabled while reconnecting in ${leaky.length} samples`);
      assert.ok(samples.some((s) => /reconnecting/.test(s.text)), 'the status bar was seen reconnecting');
      await wb.page.waitForTimeout(1500); // let any replay arrive
      const after = await wb.chatSnapshot();
      assert.deepEqual(after.users, before.users, 'no duplicate or missing user messages');
      assert.deepEqual(after.assistants, before.assistants, 'no duplicate or missing answers');
      assert.deepEqual(after.turns, before.turns, 'no duplicate turns');
      assert.equal(after.preparingTitle, '', 'old progress steps did not reappear');
      assert.equal(after.steps.length, 0, 'no live step list');
      const status = await wb.status();
      assert.ok(!status.spinning, `the status bar does not spin again (${status.text})`);
      t.note(`after the restart the session is "${after.pill}", status bar "${status.text}"`);
      // The conversation goes on (a sandbox reaped by the restart is resumed with new steps).
      await wb.send('after restart');
      const resumed = await wb.waitForChat('the answer after the restart', (s) => /agent received: after restart/.test(last(s.assistants)) && s.inputDisabled === false, 120_000);
      assert.deepEqual(resumed.users, [...before.users, 'after restart']);
      assert.equal(resumed.preparingTitle, '');
    },
  },
  {
    id: 5,
    name: 'a failing setup command: failed with step, error and Retry; status bar error; input locked; Retry after the fix',
    async run(t) {
      const { wb } = t;
      const setup = 'test -f SETUP_OK || { echo "setup needs SETUP_OK in the repository" >&2; exit 3; }';
      await startWithPrompt(wb, { repoUrl: t.repo.bare, setup, prompt: 'after the fix' });
      const failed = await wb.waitForChat('failed, with the step', (s) => s.errorVisible && s.errorMeta !== '', 120_000);
      await wb.screenshot('5-failed');
      await wb.chat.locator('.error-banner .retry-button').waitFor({ state: 'visible', timeout: 5000 });
      const retryInView = await wb.chat.locator('body').evaluate((body) => {
        const button = body.querySelector('.error-banner .retry-button').getBoundingClientRect();
        const scroller = body.querySelector('.scroller').getBoundingClientRect();
        return button.top >= scroller.top && button.bottom <= scroller.bottom + 1;
      });
      assert.ok(retryInView, 'the Retry button is scrolled into view, not cut off');
      assert.match(failed.errorMeta, /setup/, 'the failed step is named');
      assert.match(failed.errorMessage, /SETUP_OK|exit|code 3/i, `the error text says why (got "${failed.errorMessage}")`);
      assert.ok(failed.retryButton, 'a Retry button');
      assert.equal(failed.inputDisabled, true, 'the input stays locked');
      assert.ok(failed.steps.some((s) => s.step === 'setup' && s.state === 'failed'), 'the setup step is marked failed');
      const status = await wb.waitForStatus('failed', (s) => /Berth: failed/.test(s.text), 10_000);
      assert.equal(status.icon, 'codicon-error');
      t.note(`error shown: "${failed.errorMessage}" (${failed.errorMeta})`);
      // Fix the repository, then Retry from the chat.
      t.repo.commitFile('SETUP_OK', 'fixed\n');
      const retryAt = Date.now();
      await wb.chat.locator('.error-banner .retry-button').click();
      const ready = await wb.waitForChat('ready after Retry', (s) => /agent received: after the fix/.test(last(s.assistants)) && s.inputDisabled === false, 120_000);
      t.timing('Retry to ready with the answer', Date.now() - retryAt);
      assert.equal(ready.errorVisible, false);
      await wb.waitForStatus('ready', (s) => /Berth: ready/.test(s.text), 10_000);
    },
  },
  {
    id: 6,
    name: 'hostile agent output renders inert (img onerror, script, javascript: links)',
    needs: [5],
    async run(t) {
      const { wb } = t;
      await wb.send('hostile output please');
      const snap = await wb.waitForChat('the hostile answer', (s) => /hostile payload done/.test(last(s.assistants)) && s.inputDisabled === false, 60_000);
      const answer = last(snap.assistants);
      assert.match(answer, /<img src=x onerror=/, 'raw HTML is shown as text');
      assert.match(answer, /<script>/, 'the script tag is shown as text');
      const dom = await wb.chat.locator('body').evaluate((body) => {
        const md = [...body.querySelectorAll('.conversation .msg--assistant .markdown')].pop();
        return {
          imgs: md.querySelectorAll('img').length,
          scripts: md.querySelectorAll('script').length,
          jsLinks: [...body.querySelectorAll('a')].filter((a) => /^\s*javascript:/i.test(a.getAttribute('href') ?? '')).length,
          handlers: [...md.querySelectorAll('*')].filter((e) => [...e.attributes].some((a) => a.name.startsWith('on'))).length,
          links: [...md.querySelectorAll('a')].map((a) => a.getAttribute('href')),
        };
      });
      assert.deepEqual({ imgs: dom.imgs, scripts: dom.scripts, jsLinks: dom.jsLinks, handlers: dom.handlers }, { imgs: 0, scripts: 0, jsLinks: 0, handlers: 0 });
      t.note(`links rendered in the hostile answer: ${JSON.stringify(dom.links)}`);
      // Click what would have been the javascript: link, then give any payload time to run.
      await wb.chat.locator('.conversation .msg--assistant .markdown', { hasText: 'hostile payload done' }).getByText('click me').first().click();
      await wb.page.waitForTimeout(1000);
      const afterClick = await wb.chatSnapshot();
      assert.equal(afterClick.pwned, null, `no payload ran (flag: ${afterClick.pwned})`);
      await wb.screenshot('6-hostile-output');
      t.shared.reopenSession = afterClick;
    },
  },
  {
    id: 7,
    name: 'reopen: hide and show the view, reload the window; the session comes back from the server',
    async run(t) {
      const { wb } = t;
      const before = await wb.chatSnapshot();
      assert.ok(before.users.length > 0, 'a session with a conversation is open');
      await wb.showExplorer();
      await wb.showBerth();
      const shown = await wb.waitForChat('the conversation after showing the view', (s) => s.users.length === before.users.length && s.assistants.length === before.assistants.length, 20_000);
      assert.deepEqual(shown.users, before.users);
      const reloadAt = Date.now();
      await wb.page.reload();
      await wb.page.locator('.monaco-workbench').waitFor({ timeout: 60_000 });
      await wb.showBerth();
      const reopened = await wb.waitForChat(
        'the conversation after reload',
        (s) => s.users.length === before.users.length && s.assistants.length === before.assistants.length && s.pill === before.pill,
        60_000,
      );
      t.timing('window reload to conversation back', Date.now() - reloadAt);
      assert.deepEqual(reopened.users, before.users, 'the same user messages, once each');
      assert.deepEqual(reopened.assistants, before.assistants, 'the same answers, once each');
      assert.equal(reopened.pwned, null);
      assert.equal(reopened.inputDisabled, before.inputDisabled);
      const status = await wb.waitForStatus('the status bar after reload', (s) => s.visible && !s.spinning, 20_000);
      t.note(`after reload: chat "${reopened.pill}", status bar "${status.text}"`);
      // The step list rebuilt from the server is in the order the server's provider runs the steps, as it said.
      const { body: list } = await t.berth.api('GET', '/v1/sessions');
      const newest = (list.sessions ?? list)[0];
      const { body: view } = await t.berth.api('GET', `/v1/sessions/${newest.id}`);
      assert.deepEqual(view.steps, STEP_ORDER[t.provider], `the server tells its ${t.provider} step order`);
      assert.deepEqual(reopened.stepOrder, STEP_ORDER[t.provider], 'the rebuilt step list follows the server order');
      t.note(`rebuilt step order (${t.provider}): ${reopened.stepOrder.join(' → ')}`);
      await wb.screenshot('7-reopened');
    },
  },
  {
    id: 8,
    name: 'the other commands: Open Session (quick pick with status), Show Logs (preparation log), Stop Session (kept, sleeping), Delete Session',
    needs: [2],
    async run(t) {
      const { wb, page } = { wb: t.wb, page: t.wb.page };
      await wb.runCommand('Berth: Open Session');
      await wb.waitForQuickInput('Berth: Open Session');
      const row = page.locator('.quick-input-list .monaco-list-row', { hasText: 'first prompt: say hello' }).first();
      await row.waitFor({ timeout: 10_000 });
      t.note(`quick pick row: "${(await row.innerText()).replace(/\s+/g, ' ')}"`);
      await row.click();
      const opened = await wb.waitForChat('the first session', (s) => s.users[0] === 'first prompt: say hello', 20_000);
      assert.equal(new Set(opened.users).size, opened.users.length, 'each message once');

      await wb.runCommand('Berth: Show Logs');
      await wb.waitForQuickInput('Berth: Show Logs');
      await page.locator('.quick-input-list .monaco-list-row', { hasText: 'Preparation log' }).first().click();
      const editor = page.locator('.editor-instance .view-lines').first();
      await editor.waitFor({ timeout: 20_000 });
      const log = (await editor.innerText()).trim();
      assert.ok(log.length > 0 && !/is empty/.test(log), 'the preparation log opens in an editor');
      t.note(`preparation log starts: "${log.split('\n')[0]?.slice(0, 100)}"`);

      const before = (await t.berth.api('GET', '/v1/sessions')).body;
      const count = (before.sessions ?? before).length;
      const id = (before.sessions ?? before).find((s) => s.prompt === 'first prompt: say hello').id;
      // Stop: the sandbox goes, the session stays (sleeping) and a message would resume it.
      await wb.runCommand('Berth: Stop Session');
      await wb.notification(/the sandbox is stopped; the session is kept/);
      const sleeping = await wb.waitForChat('the session sleeping', (s) => s.pill === 'Sleeping' && s.inputDisabled === false, 20_000);
      assert.match(sleeping.reason, /asleep: your message resumes it/);
      assert.equal((await t.berth.api('GET', `/v1/sessions/${id}`)).body.status, 'sleeping');
      assert.equal(((await t.berth.api('GET', '/v1/sessions')).body.sessions ?? []).length, count, 'the session is kept');
      // Delete: a modal says what would be lost (nothing changed here), then the session is gone.
      await wb.runCommand('Berth: Delete Session');
      const dialog = await wb.dialog();
      t.note(`delete dialog: "${dialog.message}" / "${dialog.detail.replace(/\n+/g, ' ')}"`);
      assert.match(dialog.detail, /The session changed no files/);
      await wb.clickDialogButton('Delete Session');
      await wb.waitForChat('the chat without a session', (s) => s.pill === '' && s.users.length === 0, 20_000);
      await wb.waitForStatus('no status bar item', (s) => !s.visible, 10_000);
      const after = (await t.berth.api('GET', '/v1/sessions')).body;
      assert.equal((after.sessions ?? after).length, count - 1, 'the session is deleted on the server');
    },
  },
  {
    id: 9,
    name: "the agent's work: a changes card after the turn, Review opens the multi-file diff editor (both sides), a file's diff, +/− in the Sessions view",
    async run(t) {
      const { wb, page } = { wb: t.wb, page: t.wb.page };
      // The remote moves on after the workspace was cloned: the session's base is not in the workspace yet.
      t.repo.commitFile('CHANGELOG.md', '# changes\n');
      await startWithPrompt(wb, { repoUrl: t.repo.bare, setup: '', prompt: 'please edit files' });
      const snap = await wb.waitForChat('the changes card', (s) => s.cards.length === 1 && s.turns.length === 1 && s.inputDisabled === false, 120_000);
      await wb.screenshot('9-changes-card');
      const card = snap.cards[0];
      t.note(`card: "${card.title}" ${card.totals}: ${card.files.join(', ')}; buttons ${card.buttons.join(' / ')}`);
      assert.equal(card.title, 'Changed 3 files');
      assert.deepEqual([...card.files].sort(), ['A src/greeting.js', 'D obsolete.txt', 'M README.md']);
      assert.deepEqual(card.buttons, ['Review', 'Apply…', 'Push']);
      assert.deepEqual(snap.kinds.slice(-3), ['assistant', 'changes', 'turn'], 'the card comes after the answer, before the turn line');
      const { body: list } = await t.berth.api('GET', '/v1/sessions');
      const session = list.sessions.find((s) => s.prompt === 'please edit files');
      const changes = session.changes;
      assert.ok(changes && changes.head !== changes.base, 'the server recorded a checkpoint');
      t.shared.work = { id: session.id, ...changes };
      const summary = await wb.waitForChat('the summary above the composer', (s) => /3 files changed/.test(s.summary), 10_000);
      t.note(`summary: "${summary.summary}"`);
      assert.match(summary.summary, new RegExp(`\\+${changes.additions} −${changes.deletions}`));

      // The Sessions view shows the session's +/−.
      const row = page.locator('.part.sidebar .monaco-list-row', { hasText: 'please edit files' }).first();
      const counts = new RegExp(`3 files \\+${changes.additions} −${changes.deletions}`);
      const { rowText } = await wb.poll(
        'the Sessions view row with +/−',
        async () => ({ rowText: (await row.innerText().catch(() => '')).replace(/\s+/g, ' ') }),
        (r) => counts.test(r.rowText),
        20_000,
      );
      t.note(`Sessions view row: "${rowText}"`);

      // Delete would lose all of it: the confirmation says so (cancelled here).
      await wb.runCommand('Berth: Delete Session');
      const dialog = await wb.dialog();
      t.note(`delete dialog: "${dialog.detail.replace(/\n+/g, ' ')}"`);
      assert.match(dialog.detail, /3 changed files were never pushed or applied/);
      await page.keyboard.press('Escape');
      await page.locator('.monaco-dialog-box').waitFor({ state: 'hidden', timeout: 10_000 });

      // Review: the multi-file diff editor, both sides served by the berth-session: file system.
      await wb.chat.locator('.changes-card .changes-review').first().click();
      const diff = await wb.poll(
        'the multi-file diff editor with both sides',
        () => multiDiff(page),
        (d) => d.entries.length === 3 && d.entries.some((e) => /edited by the agent/.test(e.modified) && /# e2e test repository/.test(e.original)),
        30_000,
      );
      await wb.screenshot('9-review-multi-diff');
      t.note(`multi-file diff "${diff.title}": ${diff.entries.map((e) => `${e.label} [${e.original.slice(0, 40)} | ${e.modified.slice(0, 40)}]`).join('; ')}`);
      const entry = (name) => diff.entries.find((e) => e.label.includes(name));
      assert.match(entry('README.md').original, /^# e2e test repository$/m, 'the left side is the base');
      assert.match(entry('README.md').modified, /edited by the agent/, 'the right side is the checkpoint');
      assert.match(entry('greeting.js').modified, /hello from the agent/);
      assert.match(entry('obsolete.txt').original, /deleted by the agent/);

      // A file in the card opens its own diff editor.
      await wb.chat.locator('.changes-card .changes-file[data-path="README.md"]').first().click();
      const tab = page.locator('.tabs-container .tab', { hasText: 'README.md (Berth:' }).first();
      await tab.waitFor({ timeout: 20_000 });
      const sides = await wb.poll(
        'the README diff',
        () =>
          page.evaluate(() => {
            const editor = document.querySelector('.editor-instance .monaco-diff-editor');
            const text = (sel) => (editor?.querySelector(sel)?.textContent ?? '').replace(/\u00a0/g, ' ');
            return { original: text('.editor.original .view-lines'), modified: text('.editor.modified .view-lines') };
          }),
        (d) => /edited by the agent/.test(d.modified) && /e2e test repository/.test(d.original),
        20_000,
      );
      t.note(`README diff: "${sides.original}" → "${sides.modified}"`);
      await wb.screenshot('9-file-diff');
      await page.keyboard.press('Escape');
    },
  },
  {
    id: 10,
    name: "Apply: fetch the missing base, check out as a branch; then onto a dirty working tree (dry run shows the conflict, the local edit is kept)",
    needs: [9],
    async run(t) {
      const { wb, page } = { wb: t.wb, page: t.wb.page };
      const { id, head, base, branch } = t.shared.work;
      const ws = t.repo.workspace;
      const git = (...args) => execFileSync('git', args, { cwd: ws, encoding: 'utf8' }).trim();
      const commitExists = (sha) => spawnSync('git', ['cat-file', '-e', `${sha}^{commit}`], { cwd: ws }).status === 0;
      assert.equal(commitExists(base), false, 'the workspace lacks the base commit');

      // Apply as a branch: the missing base is explained, and fetched on request.
      await wb.chat.locator('.changes-card .changes-apply').first().click();
      const missing = await wb.dialog();
      t.note(`missing base: "${missing.message}"`);
      assert.match(missing.message, new RegExp(`does not have commit ${base.slice(0, 7)}`));
      await wb.screenshot('10-missing-base');
      await wb.clickDialogButton('Fetch from origin');
      await wb.pick('Apply Changes', 'Check out as a new branch');
      await wb.waitForQuickInput('check out the session');
      const suggested = await wb.input.inputValue();
      t.note(`suggested branch name: ${suggested}`);
      assert.match(suggested, /^berth\//, 'a branch of its own, not the branch the session started on');
      await page.keyboard.press('Enter');
      await wb.notification(/switched to the new branch/);
      assert.equal(git('symbolic-ref', '--short', 'HEAD'), suggested);
      assert.equal(git('rev-parse', 'HEAD'), head, 'the new branch is at the session\'s head');
      assert.equal(readFileSync(join(ws, 'README.md'), 'utf8'), '# e2e test repository (edited by the agent)\n');
      assert.equal(git('rev-parse', `refs/berth/sessions/${id}`), head);

      // Back on main, with a local edit the session's change overlaps, and one it does not touch.
      git('switch', '-q', 'main');
      const mine = '# my local title\n';
      writeFileSync(join(ws, 'README.md'), mine);
      writeFileSync(join(ws, 'local-notes.txt'), 'my untracked notes\n');
      const statusBefore = git('status', '--porcelain');
      await wb.chat.locator('.changes-card .changes-apply').first().click();
      await wb.pick('Apply Changes', 'Apply onto the working tree');
      const dryRun = await wb.dialog();
      t.note(`dry run: "${dryRun.message}" / ${dryRun.detail.replace(/\n+/g, ' | ')}`);
      assert.match(dryRun.detail, /Conflicts with your uncommitted edits \(1\): README\.md\./);
      assert.match(dryRun.detail, /Taken from the session \(2, not edited locally\)/);
      for (const button of ['Apply with Conflict Markers', 'Apply, Leave Conflicting Files Alone', 'Cancel']) assert.ok(dryRun.buttons.includes(button), `a "${button}" button (${dryRun.buttons})`);
      assert.equal(git('status', '--porcelain'), statusBefore, 'the dry run changed nothing');
      assert.equal(readFileSync(join(ws, 'README.md'), 'utf8'), mine);
      await wb.screenshot('10-dry-run-conflict');
      await wb.clickDialogButton('Apply with Conflict Markers');
      await wb.notification(/applied 3 files onto the working tree \(1 with conflict markers\)/);
      await wb.screenshot('10-applied');
      const readme = readFileSync(join(ws, 'README.md'), 'utf8');
      t.note(`README.md after the apply:\n${readme}`);
      assert.match(readme, /^<<<<<<< yours \(working tree\)\n# my local title\n=======\n# e2e test repository \(edited by the agent\)\n>>>>>>> Berth session/m, 'the local edit is kept inside the markers');
      assert.equal(readFileSync(join(ws, 'src/greeting.js'), 'utf8'), 'export const greeting = "hello from the agent";\n');
      assert.equal(existsSync(join(ws, 'obsolete.txt')), false);
      assert.equal(readFileSync(join(ws, 'local-notes.txt'), 'utf8'), 'my untracked notes\n');
      const backups = execFileSync('find', [join(ws, '.git', 'berth', 'backups', id), '-name', 'README.md'], { encoding: 'utf8' }).trim().split('\n');
      assert.equal(readFileSync(backups[0], 'utf8'), mine, 'a copy of the local version is kept');
      assert.equal(git('diff', '--cached', '--name-only'), '', 'nothing staged');
      const snap = await wb.waitForChat('the summary says applied', (s) => /Applied to the working tree/.test(s.summary), 10_000);
      t.note(`summary: "${snap.summary}"`);
    },
  },
  {
    id: 11,
    name: 'Push: the work reaches the bare remote on a branch of its own; Delete then says it was pushed and applied',
    needs: [9],
    async run(t) {
      const { wb, page } = { wb: t.wb, page: t.wb.page };
      const { id, head } = t.shared.work;
      const bareGit = (...args) => spawnSync('git', ['--git-dir', t.repo.bare, ...args], { encoding: 'utf8' });
      const mainBefore = bareGit('rev-parse', 'refs/heads/main').stdout.trim();
      const pushedAt = Date.now();
      // The session started from main (the workspace's branch) and works on a branch of its own:
      // that is what Push sends, and main on the remote stays as it was.
      const target = (await t.berth.api('GET', `/v1/sessions/${id}`)).body.changes?.branch;
      assert.ok(target?.startsWith('berth/'), `the session's work branch is its own (${target})`);
      await wb.chat.locator('.changes-card .changes-push').first().click();
      await wb.notification(new RegExp(`pushed ${target.replace('/', '\\/')}`));
      t.timing('push to notification', Date.now() - pushedAt);
      await wb.screenshot('11-pushed');
      assert.equal(bareGit('rev-parse', `refs/heads/${target}`).stdout.trim(), head, 'the bare remote has the session\'s head on that branch');
      assert.equal(bareGit('rev-parse', 'refs/heads/main').stdout.trim(), mainBefore, 'main on the remote did not move');
      const snap = await wb.waitForChat('the summary says pushed', (s) => s.summary.includes(`Pushed to ${target}`), 10_000);
      t.note(`summary: "${snap.summary}"`);
      // Delete now says nothing would be lost (cancelled: the session stays).
      await wb.runCommand('Berth: Delete Session');
      const dialog = await wb.dialog();
      t.note(`delete dialog: "${dialog.detail.replace(/\n+/g, ' ')}"`);
      assert.match(dialog.detail, new RegExp(`All of its work \\(3 changed files\\) was pushed to ${target.replace('/', '\\/')} and applied onto this working tree`));
      await page.keyboard.press('Escape');
      await page.locator('.monaco-dialog-box').waitFor({ state: 'hidden', timeout: 10_000 });
      assert.equal((await t.berth.api('GET', `/v1/sessions/${id}`)).status, 200, 'the session is still there');
    },
  },
  {
    id: 13,
    name: 'git credentials: Add Git Credential (host, user name, token in a password box), listed by Git Credentials without the token, removed after a confirmation',
    async run(t) {
      const { wb } = t;
      const token = `e2e_tok_${Date.now().toString(36)}_credential`;
      const host = 'git.example.com:8443';
      t.shared.typedValues = [...(t.shared.typedValues ?? []), token];
      await wb.runCommand('Berth: Add Git Credential');
      await wb.waitForQuickInput('Add Git Credential (1/3)');
      // The workspace's remote is a local path: nothing to prefill (an https remote's host would be).
      assert.equal((await wb.quickInputState()).value, '', 'no host prefilled from a non-https remote');
      const badHost = await wb.typeUntilMessage('not a host', /is not a host/);
      t.note(`host box refuses "not a host": "${badHost.message}"`);
      await wb.answer('Add Git Credential (1/3)', 'https://Git.Example.com:8443/team/app.git'); // a pasted URL becomes its host
      await wb.answer('Add Git Credential (2/3)', 'e2e-bot');
      await wb.waitForQuickInput('Add Git Credential (3/3)');
      const tokenBox = await wb.typeUntilMessage('abc1234', /at least 8 characters/);
      assert.equal(tokenBox.password, true, 'the token box hides what is typed');
      await wb.page.keyboard.press('Enter'); // refused: the box stays open
      await wb.page.waitForTimeout(300);
      await wb.waitForQuickInput('Add Git Credential (3/3)', 1000);
      await wb.screenshot('13-token-too-short');
      await wb.answer('Add Git Credential (3/3)', token);
      await wb.notification(/saved the credential for git\.example\.com:8443/);
      const shown = (await wb.notificationTexts()).find((m) => m.includes('saved the credential'));
      t.note(`notification: "${shown}"`);
      assert.match(shown, /user e2e-bot/);
      assert.ok(!shown.includes(token), 'the notification never shows the token');

      const stored = await t.berth.api('GET', '/v1/credentials');
      assert.deepEqual(stored.body.credentials.map((c) => `${c.host} ${c.username}`), [`${host} e2e-bot`]);
      assert.ok(!JSON.stringify(stored.body).includes(token), 'the server lists no token');

      await wb.runCommand('Berth: Git Credentials');
      await wb.waitForQuickInput('Berth: Git Credentials');
      const row = wb.page.locator('.quick-input-list .monaco-list-row', { hasText: host }).first();
      await row.waitFor({ timeout: 20_000 });
      const rows = await wb.quickPickRows();
      t.note(`Git Credentials: ${rows.join(' / ')}`);
      const line = rows.find((r) => r.includes(host));
      assert.match(line, /e2e-bot/, 'the row shows the user name');
      assert.match(line, /added just now/);
      assert.ok(rows.every((r) => !r.includes(token)), 'no row shows the token');
      assert.ok(rows.some((r) => /Add Git Credential/.test(r)) && rows.some((r) => /Connect GitHub/.test(r)), 'Add and Connect GitHub are offered');
      await wb.screenshot('13-git-credentials');
      await row.click();
      await wb.pick(host, 'Remove…');
      const dialog = await wb.dialog();
      t.note(`remove dialog: "${dialog.message}" — ${dialog.detail}`);
      assert.match(dialog.message, /Remove the credential for git\.example\.com:8443 \(user e2e-bot\)/);
      await wb.clickDialogButton('Remove');
      await wb.notification(/removed the credential for git\.example\.com:8443/);
      assert.deepEqual((await t.berth.api('GET', '/v1/credentials')).body.credentials, [], 'removed on the server');
    },
  },
  {
    id: 14,
    name: "secrets: Manage Secrets adds one (name, value in a password box, this repository, agent); the list shows it without its value; a session's agent gets it (blanked in the chat), a setup secret stays out of the agent; replace says so; remove",
    async run(t) {
      const { wb } = t;
      const agentValue = `e2e-agent-secret-${Date.now().toString(36)}`;
      const setupValue = `e2e-setup-secret-${Date.now().toString(36)}`;
      t.shared.typedValues = [...(t.shared.typedValues ?? []), agentValue, setupValue];
      // A second secret, for all sessions and setup only, straight through the API.
      assert.equal((await t.berth.api('PUT', '/v1/secrets/E2E_SETUP_SECRET', { value: setupValue, exposeTo: 'setup' })).status, 200);

      await wb.runCommand('Berth: Manage Secrets');
      await wb.pick('Berth: Manage Secrets', 'Add Secret…');
      await wb.waitForQuickInput('Add Secret (1/4)');
      const badName = await wb.typeUntilMessage('MY-SECRET', /not an environment variable name/);
      t.note(`name box refuses "MY-SECRET": "${badName.message}"`);
      await wb.answer('Add Secret (1/4)', 'E2E_AGENT_SECRET');
      await wb.waitForQuickInput('Add Secret (2/4)');
      const valueBox = await wb.typeUntilMessage('short', /at least 8 characters/);
      assert.equal(valueBox.password, true, 'the value box hides what is typed');
      await wb.answer('Add Secret (2/4)', agentValue);
      await wb.waitForQuickInput('Add Secret (3/4)');
      const scopes = await wb.quickPickRows();
      t.note(`scopes offered: ${scopes.join(' / ')}`);
      assert.ok(scopes.some((r) => r.includes('Only this repository') && r.includes(t.repo.bare)), "the workspace's remote is offered as the scope");
      await wb.pick('Add Secret (3/4)', 'Only this repository');
      await wb.waitForQuickInput('Add Secret (4/4)');
      const exposures = await wb.quickPickRows();
      assert.ok(exposures.some((r) => /setup.*setup and lifecycle commands only, never the agent/.test(r)), exposures.join(' / '));
      assert.ok(exposures.some((r) => /agent.*also the agent's tools: the model can read it/.test(r)), exposures.join(' / '));
      await wb.screenshot('14-exposure');
      await wb.pick('Add Secret (4/4)', "the model can read it");
      await wb.notification(/added the secret E2E_AGENT_SECRET/);
      const added = (await wb.notificationTexts()).find((m) => m.includes('added the secret'));
      t.note(`notification: "${added}"`);
      assert.ok(!added.includes(agentValue));

      const { body } = await t.berth.api('GET', '/v1/secrets');
      const scope = t.repo.bare.replace(/\.git$/, '');
      assert.deepEqual(body.secrets.map((s) => `${s.name} ${s.repo} ${s.exposeTo}`).sort(), [`E2E_AGENT_SECRET ${scope} agent`, 'E2E_SETUP_SECRET null setup']);
      assert.ok(![agentValue, setupValue].some((v) => JSON.stringify(body).includes(v)), 'the server lists no value');

      await wb.runCommand('Berth: Manage Secrets');
      await wb.waitForQuickInput('Berth: Manage Secrets');
      await wb.page.locator('.quick-input-list .monaco-list-row', { hasText: 'E2E_AGENT_SECRET' }).first().waitFor({ timeout: 20_000 });
      const rows = await wb.quickPickRows();
      t.note(`Manage Secrets: ${rows.join(' / ')}`);
      const agentRow = rows.find((r) => r.includes('E2E_AGENT_SECRET'));
      assert.match(agentRow, /agent: the model can read it/);
      assert.match(rows.find((r) => r.includes('E2E_SETUP_SECRET')), /setup: never the agent/);
      assert.match(agentRow, /only sessions of/);
      assert.match(rows.find((r) => r.includes('E2E_SETUP_SECRET')), /all of your sessions/);
      // A group's separator label shows at the right of its first row.
      assert.match(agentRow, /This repository$/, 'grouped by where they apply');
      assert.match(rows.find((r) => r.includes('E2E_SETUP_SECRET')), /All of your sessions$/);
      assert.ok(rows.every((r) => !r.includes(agentValue) && !r.includes(setupValue)), 'no row shows a value');
      await wb.screenshot('14-secrets');
      await wb.page.keyboard.press('Escape');

      // A session of this repository: the setup command sees the setup secret; the agent only its own.
      await startWithPrompt(wb, { repoUrl: t.repo.bare, setup: 'test -n "$E2E_SETUP_SECRET"', prompt: 'show secrets' });
      const answered = await wb.waitForChat('the agent\'s answer', (s) => /agent secret:/.test(last(s.assistants)) && s.inputDisabled === false, 120_000);
      t.note(`agent answered: "${last(answered.assistants)}"`);
      assert.match(last(answered.assistants), /agent secret: \[redacted\]; setup secret: unset/);
      await wb.screenshot('14-session-with-secrets');

      // Replacing (same name and scope) says so.
      await wb.runCommand('Berth: Manage Secrets');
      await wb.pick('Berth: Manage Secrets', 'E2E_AGENT_SECRET');
      await wb.pick('E2E_AGENT_SECRET', 'Replace the value…');
      await wb.answer('Replace the secret E2E_AGENT_SECRET (1/2)', `${agentValue}-2`);
      await wb.pick('Replace the secret E2E_AGENT_SECRET (2/2)', 'setup and lifecycle commands only');
      await wb.notification(/replaced the secret E2E_AGENT_SECRET/);
      const replaced = (await t.berth.api('GET', '/v1/secrets')).body.secrets.filter((s) => s.name === 'E2E_AGENT_SECRET');
      assert.deepEqual(replaced.map((s) => s.exposeTo), ['setup'], 'one secret, its exposure changed');

      // Remove it with the row's trash button.
      await wb.runCommand('Berth: Manage Secrets');
      await wb.waitForQuickInput('Berth: Manage Secrets');
      const row = wb.page.locator('.quick-input-list .monaco-list-row', { hasText: 'E2E_AGENT_SECRET' }).first();
      await row.waitFor({ timeout: 20_000 });
      await row.hover();
      await row.locator('.codicon-trash').click();
      const dialog = await wb.dialog();
      assert.match(dialog.message, /Remove the secret E2E_AGENT_SECRET \(only sessions of /);
      await wb.clickDialogButton('Remove');
      await wb.notification(/removed the secret E2E_AGENT_SECRET/);
      assert.deepEqual((await t.berth.api('GET', '/v1/secrets')).body.secrets.map((s) => s.name), ['E2E_SETUP_SECRET']);
      assert.equal((await t.berth.api('DELETE', '/v1/secrets/E2E_SETUP_SECRET')).status, 204);
    },
  },
  {
    id: 15,
    name: "Connect GitHub: VS Code's own GitHub sign-in asks for consent; Cancel stores nothing and shows no error",
    async run(t) {
      const { wb } = t;
      await wb.runCommand('Berth: Connect GitHub');
      const box = wb.page.locator('.monaco-dialog-box');
      await box.waitFor({ state: 'visible', timeout: 20_000 });
      const asked = (await box.innerText()).replace(/\s+/g, ' ').trim();
      t.note(`VS Code asks: "${asked}"`);
      assert.match(asked, /Berth.*wants to sign in using GitHub/);
      await wb.screenshot('15-connect-github-consent');
      await wb.clickDialogButton('Cancel');
      const log = await wb.poll('the extension log says the sign-in was cancelled', async () => ({ text: extensionLog(t) }), (l) => /connect GitHub: the sign-in was cancelled/.test(l.text), 10_000);
      assert.doesNotMatch(log.text, /\[error\] connect GitHub/, 'a cancel is no error');
      const errors = (await wb.notificationTexts()).filter((m) => /GitHub/.test(m));
      assert.deepEqual(errors, [], 'no notification about it');
      assert.deepEqual((await t.berth.api('GET', '/v1/credentials')).body.credentials, [], 'nothing stored');
    },
  },
  {
    id: 16,
    name: 'a clone the remote refuses for want of a credential: the notification offers Add Git Credential for its host, then Retry; the remote is shown that credential',
    async run(t) {
      const { wb } = t;
      const remote = await refusingRemote();
      onCleanup('the refusing http remote', () => new Promise((r) => remote.server.close(r)));
      const host = `127.0.0.1:${remote.port}`;
      const url = `http://${host}/acme/private.git`;
      const token = `e2e_retry_${Date.now().toString(36)}_token`;
      t.shared.typedValues = [...(t.shared.typedValues ?? []), token];
      await wb.runCommand('Berth: Start Session');
      await wb.pick('(1/3)', 'Enter a repository URL…');
      await wb.answer('(1/3)', url);
      await wb.answer('(2/3)', '');
      await wb.answer('(3/3)', 'hello private repository');
      await wb.waitForChat('the clone failed', (s) => s.errorVisible, 60_000);
      await wb.notification(new RegExp(`${host.replace(/\./g, '\\.')} asks to sign in`));
      const offer = (await wb.notificationTexts()).find((m) => m.includes('asks to sign in'));
      t.note(`offer: "${offer}"`);
      await wb.screenshot('16-credential-offer');
      await wb.page.locator('.notifications-toasts .monaco-button', { hasText: 'Add Git Credential…' }).first().click();
      // The host is known: the user name and the token are asked.
      await wb.answer(`Replace the credential for ${host} (1/2)`, '');
      await wb.answer(`Replace the credential for ${host} (2/2)`, token);
      await wb.notification(new RegExp(`saved the credential for ${host.replace(/\./g, '\\.')}`));
      const retriedAt = Date.now();
      await wb.page.locator('.notifications-toasts .monaco-button', { hasText: 'Retry' }).first().click();
      const shown = await wb.poll('the remote to be shown the credential', async () => ({ header: remote.authorizations[0] }), (r) => !!r.header, 60_000);
      t.timing('Retry to the credential reaching the remote', Date.now() - retriedAt);
      assert.equal(Buffer.from(shown.header.replace(/^Basic /, ''), 'base64').toString('utf8'), `x-access-token:${token}`);
      // This remote refuses everyone: the next offer is to replace the token that was refused.
      await wb.notification(/refused the stored credential/, 60_000);
      await wb.screenshot('16-credential-refused');
      assert.equal((await t.berth.api('DELETE', `/v1/credentials/${encodeURIComponent(host)}`)).status, 204);
    },
  },
  {
    id: 17,
    name: 'a checkout with several dev container configs: Start Session asks which one (by name), the session runs with the one picked',
    async run(t) {
      const { wb } = t;
      const config = (name) => JSON.stringify({ name, image: 'berth/base:bookworm' }, null, 2) + '\n';
      // In the repository (the server clones it) and in the open folder (the extension reads it; earlier
      // scenarios left that checkout on a branch of its own, with local edits).
      const wsConfigs = join(t.repo.workspace, '.devcontainer');
      for (const [folder, name] of [['alpha', 'Alpha'], ['beta', 'Beta']]) {
        t.repo.commitFile(`.devcontainer/${folder}/devcontainer.json`, config(name));
        mkdirSync(join(wsConfigs, folder), { recursive: true });
        writeFileSync(join(wsConfigs, folder, 'devcontainer.json'), config(name));
      }
      try {
        await wb.runCommand('Berth: Start Session');
        await wb.pick('(1/3)', t.repo.bare);
        await wb.waitForQuickInput('dev container');
        const rows = await wb.page.locator('.quick-input-list .monaco-list-row').allInnerTexts();
        t.note(`configs offered: ${JSON.stringify(rows.map((r) => r.replace(/\s+/g, ' ').trim()))}`);
        assert.ok(rows.some((r) => r.includes('Alpha') && r.includes('.devcontainer/alpha/devcontainer.json')), 'Alpha is offered, with its path');
        assert.ok(rows.some((r) => r.includes('Beta')), 'Beta is offered');
        await wb.screenshot('17-devcontainer-pick');
        await wb.pick('dev container', 'Beta');
        await wb.answer('(2/3)', '');
        await wb.answer('(3/3)', 'which config is this?');
        await wb.waitForChat('ready with an answer', (s) => s.inputDisabled === false && /agent received: which config/.test(last(s.assistants)), 120_000);
        const { body: list } = await t.berth.api('GET', '/v1/sessions');
        const newest = list.sessions[0];
        assert.equal(newest.devcontainer, '.devcontainer/beta/devcontainer.json', 'the start named the config picked');
        assert.equal(newest.status, 'ready');
      } finally {
        // The scenarios after this one start sessions of this repository with no config named.
        t.repo.removeFiles('.devcontainer');
        rmSync(wsConfigs, { recursive: true, force: true });
      }
    },
  },
  {
    id: 18,
    name: 'a long session: after 500 turns, a 2 MiB streamed answer costs each chat update the same as at the start',
    async run(t) {
      const { wb } = t;
      await startWithPrompt(wb, { repoUrl: t.repo.bare, setup: '', prompt: 'turn 0' });
      await wb.waitForChat('ready', (s) => s.inputDisabled === false && /agent received: turn 0/.test(last(s.assistants)), 120_000);
      const { body: list } = await t.berth.api('GET', '/v1/sessions');
      const id = list.sessions[0].id;
      const historyStartedAt = Date.now();
      for (let n = 1; n < 500; n++) {
        const sent = await t.berth.api('POST', `/v1/sessions/${id}/messages`, { text: `turn ${n}` });
        assert.equal(sent.status, 202, `turn ${n}: ${JSON.stringify(sent.body)}`);
        await wb.poll(`turn ${n} to end`, async () => (await t.berth.api('GET', `/v1/sessions/${id}`)).body, (v) => v.status === 'ready', 30_000);
      }
      t.timing('500 turns through the API, the chat open', Date.now() - historyStartedAt);
      const body = wb.chat.locator('body');
      await wb.poll('the chat to show 500 turns', () => body.evaluate((b) => ({ turns: b.querySelectorAll('.turn').length })), (r) => r.turns >= 500, 60_000);
      await body.evaluate(() => window.__berthUpdates.splice(0));
      await wb.send('a long answer please');
      await wb.poll(
        'the long answer to finish',
        () => body.evaluate((b) => ({ done: [...b.querySelectorAll('.msg--assistant')].at(-1)?.textContent?.includes('long answer finished') ?? false })),
        (r) => r.done,
        120_000,
      );
      const updates = await body.evaluate(() => window.__berthUpdates.slice());
      const patches = updates.filter((u) => u.type === 'patch');
      assert.ok(patches.length >= 20, `the answer came in many updates (${patches.length})`);
      const tenth = Math.max(1, Math.floor(patches.length / 10));
      const median = (xs) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];
      const first = patches.slice(0, tenth);
      const lastTenth = patches.slice(-tenth);
      const figures = {
        updates: patches.length,
        wholeStates: updates.length - patches.length,
        firstBytes: median(first.map((u) => u.bytes)),
        lastBytes: median(lastTenth.map((u) => u.bytes)),
        firstMs: median(first.map((u) => u.ms)),
        lastMs: median(lastTenth.map((u) => u.ms)),
      };
      t.note(`chat updates while 2 MiB streamed after 500 turns: ${figures.updates} patches (${figures.wholeStates} whole states); bytes per update median ${figures.firstBytes} (first 10%) vs ${figures.lastBytes} (last 10%); webview time per update median ${figures.firstMs.toFixed(2)} ms vs ${figures.lastMs.toFixed(2)} ms`);
      t.timing('chat update, last 10% of a 2 MiB answer after 500 turns (webview ms, median)', Math.round(figures.lastMs));
      assert.equal(figures.wholeStates, 0, 'no whole state was posted during the answer');
      assert.ok(figures.lastBytes < 64 * 1024, `an update is the size of a chunk, not of the session (${figures.lastBytes} bytes)`);
      assert.ok(figures.lastBytes <= 3 * figures.firstBytes + 1024, 'bytes per update do not grow with the answer');
      assert.ok(figures.lastMs <= 3 * figures.firstMs + 5, `time per update does not grow with the answer (${figures.firstMs.toFixed(2)} → ${figures.lastMs.toFixed(2)} ms)`);
    },
  },
  {
    id: 19,
    name: 'Open Terminal: a shell in the sandbox in a VS Code terminal; what is typed there runs in the workspace',
    async run(t) {
      const { wb, page } = { wb: t.wb, page: t.wb.page };
      await startWithPrompt(wb, { repoUrl: t.repo.bare, setup: '', prompt: 'a session for the terminal' });
      await wb.waitForChat('ready with an answer', (s) => s.inputDisabled === false && /a session for the terminal/.test(last(s.assistants)), 120_000);
      const { body: list } = await t.berth.api('GET', '/v1/sessions');
      const id = list.sessions.find((s) => s.prompt === 'a session for the terminal').id;
      await wb.runCommand('Berth: Open Terminal');
      const tab = page.locator('.terminal-tabs-entry, .single-terminal-tab, .terminal-tab', { hasText: 'Berth:' }).first();
      await tab.waitFor({ timeout: 20_000 }).catch(() => {});
      const xterm = page.locator('.terminal-wrapper.active .xterm, .xterm').first();
      await xterm.waitFor({ timeout: 20_000 });
      await xterm.click();
      const proof = join(t.berth.dataDir, 'workspaces', id, 'e2e-terminal.txt');
      const startedAt = Date.now();
      // The shell may still be starting: typed keys wait in the PTY, so type once and wait for the file.
      await page.keyboard.type('echo "$((6*7)) from $(id -un) in $(pwd)" > e2e-terminal.txt');
      await page.keyboard.press('Enter');
      const written = await wb.poll('the file the terminal wrote', async () => ({ text: existsSync(proof) ? readFileSync(proof, 'utf8') : '' }), (r) => r.text.includes('42'), 30_000);
      t.timing('command typed to its file in the workspace', Date.now() - startedAt);
      t.note(`the terminal wrote: ${written.text.trim()}`);
      assert.match(written.text, /^42 from \S+ in \/\S+\n$/);
      // Ctrl-C reaches the shell: an interrupted sleep never writes its file.
      const late = join(t.berth.dataDir, 'workspaces', id, 'e2e-late.txt');
      await page.keyboard.type('sleep 20; touch e2e-late.txt');
      await page.keyboard.press('Enter');
      await new Promise((r) => setTimeout(r, 700));
      await page.keyboard.press('Control+C');
      await page.keyboard.type('echo interrupted > e2e-ctrl-c.txt');
      await page.keyboard.press('Enter');
      await wb.poll('the command after Ctrl-C', async () => ({ ok: existsSync(join(t.berth.dataDir, 'workspaces', id, 'e2e-ctrl-c.txt')) }), (r) => r.ok, 15_000);
      assert.ok(!existsSync(late), 'the sleep was interrupted');
      await wb.screenshot('19-terminal');
    },
  },
  {
    id: 20,
    name: 'notifications: a session not in view finishes its turn; the notification offers Open and Review Changes; Open shows it; the Sessions view follows it live',
    async run(t) {
      const { wb, page } = { wb: t.wb, page: t.wb.page };
      const prompt = 'in the background: edit files please';
      const started = await t.berth.api('POST', '/v1/sessions', { repo: { url: t.repo.bare }, prompt, autoInitiate: true });
      assert.equal(started.status, 202, JSON.stringify(started.body));
      const startedAt = Date.now();
      const toast = page.locator('.notifications-toasts .notification-list-item', { hasText: 'finished its turn' }).first();
      await toast.waitFor({ timeout: 120_000 });
      t.timing('start (from elsewhere) to the notification', Date.now() - startedAt);
      const text = (await toast.innerText()).replace(/\s+/g, ' ');
      t.note(`notification: "${text}"`);
      assert.match(text, /in the background: edit files please/);
      assert.match(text, /changed \d+ files?/);
      await wb.screenshot('20-notification');
      assert.equal(await toast.locator('.monaco-button', { hasText: 'Review Changes' }).count(), 1, 'Review Changes offered');
      // The Sessions view shows it as ready without anyone refreshing it.
      const row = page.locator('.monaco-list-row', { hasText: prompt }).first();
      await wb.poll('the session ready in the Sessions view', async () => ({ text: (await row.isVisible()) ? await row.innerText() : '' }), (r) => /ready/.test(r.text), 20_000);
      await toast.locator('.monaco-button', { hasText: /^Open$/ }).click();
      await wb.waitForChat('the background session in the chat', (s) => s.users[0] === prompt, 20_000);
    },
  },
  {
    id: 21,
    name: 'models and usage: with a server offering two models, Start Session asks which one; the agent uses it; the chat shows the tokens of the turn',
    async run(t) {
      const { wb } = t;
      const llm = await fakeLlm(t.berth.provider);
      const port = await freePort();
      const second = createBerthServer({
        cli: t.berth.cli,
        dataDir: join(tempDir('berth-e2e-llm-'), 'data'),
        port,
        provider: t.berth.provider,
        artifacts: t.artifacts,
        agentArgs: ['--llm-base-url', llm.url, '--llm-models', 'e2e-small,e2e-large'],
        name: 'berth-server-llm',
      });
      onCleanup('containers of the LLM server', () => removeContainers(second.instance));
      (t.shared.otherTokens ??= []).push(second.token); // searched for in every log after the run
      await second.start();
      try {
        await wb.signIn(second.url, second.token);
        await wb.runCommand('Berth: Start Session');
        await wb.pick('(1/3)', t.repo.bare);
        await wb.answer('(2/3)', '');
        await wb.waitForQuickInput('model');
        const rows = (await wb.quickPickRows()).map((r) => r.replace(/\s+/g, ' ').trim());
        t.note(`models offered: ${JSON.stringify(rows)}`);
        assert.ok(rows.some((r) => r.startsWith('e2e-small') && /default/.test(r)), 'the default is marked');
        assert.ok(rows.some((r) => r.startsWith('e2e-large')));
        await wb.pick('model', 'e2e-large');
        await wb.answer('(3/3)', 'which model are you?');
        const done = await wb.waitForChat('the answer and its tokens', (s) => /answer from e2e-large/.test(last(s.assistants)) && /tokens/.test(last(s.turns)), 120_000);
        t.note(`turn line: "${last(done.turns)}"`);
        assert.match(last(done.turns), /1,234 tokens \(1,200 in, 34 out\)/);
        assert.equal(llm.requests.at(-1)?.model, 'e2e-large', 'the endpoint was asked for the model picked');
        const { body } = await second.api('GET', '/v1/sessions');
        assert.equal(body.sessions[0].model, 'e2e-large');
        assert.deepEqual(body.sessions[0].usage, { promptTokens: 1200, completionTokens: 34 });
        await wb.screenshot('21-model-usage');
        // The next start offers the last choice first.
        await wb.runCommand('Berth: Start Session');
        await wb.pick('(1/3)', t.repo.bare);
        await wb.answer('(2/3)', '');
        await wb.waitForQuickInput('model');
        const again = (await wb.quickPickRows()).map((r) => r.replace(/\s+/g, ' ').trim());
        assert.ok(again[0]?.startsWith('e2e-large'), `the last choice first: ${JSON.stringify(again)}`);
        await wb.page.keyboard.press('Escape');
      } finally {
        await second.stop();
        await wb.signIn(t.berth.url, t.berth.token);
      }
    },
  },
  {
    id: 12,
    name: 'the embedded local server (berth.serverUrl empty), shared by a second window',
    async run(t) {
      const { wb } = t;
      // The extension starts the server the vsix carries; its data dir is in VS Code's global storage.
      const dataDir = join(t.profile.data, 'User', 'globalStorage', 'berth.berth', 'server');
      onCleanup('containers of the embedded server', () => removeContainers(instanceTag(dataDir)));
      writeProfileSettings(t.profile.data, '');
      const startedAt = Date.now();
      const serverFile = join(dataDir, 'server.json');
      await wb.poll('the embedded server (server.json)', async () => ({ ok: existsSync(serverFile) }), (r) => r.ok, 60_000);
      await wb.waitForChat('signed in to the local server', (s) => /No session open/.test(s.welcome), 30_000);
      t.timing('setting cleared to the embedded server answering', Date.now() - startedAt);
      const { pid, url } = JSON.parse(readFileSync(serverFile, 'utf8'));
      assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);
      t.note(`embedded server ${url} (pid ${pid})`);

      await startWithPrompt(wb, { repoUrl: t.repo.bare, setup: '', prompt: 'hello embedded server' });
      const answered = await wb.waitForChat('the echo agent answer', (s) => /You said/.test(last(s.assistants)) && s.inputDisabled === false, 120_000);
      assert.match(last(answered.assistants), /hello embedded server/);

      // A second window: it uses the same server instead of failing to start another one.
      const second = new Workbench(await wb.page.context().browser().newPage({ viewport: { width: 1400, height: 900 } }), { artifacts: t.artifacts });
      try {
        await second.open(t.workbenchUrl, t.repo.workspace);
        await second.showBerth();
        // It reopens nothing by itself (last session is per window state) but lists the session.
        await second.runCommand('Berth: Open Session');
        await second.waitForQuickInput('Berth: Open Session');
        const row = second.page.locator('.quick-input-list .monaco-list-row', { hasText: 'hello embedded server' }).first();
        await row.waitFor({ timeout: 20_000 });
        await row.click();
        const mirrored = await second.waitForChat('the same conversation', (s) => s.users[0] === 'hello embedded server' && s.assistants.length === 1, 20_000);
        assert.match(last(mirrored.assistants), /hello embedded server/);
        await second.screenshot('9-second-window');
        const now = JSON.parse(readFileSync(serverFile, 'utf8'));
        assert.deepEqual(now, { pid, url }, 'still the one server');
      } finally {
        await second.page.close();
      }
    },
  },
];
