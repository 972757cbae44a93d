// Drives the VS Code workbench the way a person does: command palette, quick inputs, the Berth
// activity-bar view, the chat webview (two nested iframes) and the status bar.

export const EXTENSION_ID = 'berth.berth';

export class Workbench {
  constructor(page, { artifacts }) {
    this.page = page;
    this.artifacts = artifacts;
    this.quickInput = page.locator('.quick-input-widget');
    this.input = page.locator('.quick-input-widget input.input');
    // The chat: outer webview iframe of this extension, then the frame holding our HTML.
    this.chat = page.frameLocator(`iframe.webview.ready[src*="extensionId=${EXTENSION_ID}"]`).frameLocator('iframe#active-frame');
    this.statusItem = page.locator('.statusbar-item', { hasText: 'Berth:' });
  }

  async open(url, folder) {
    await this.page.goto(`${url}/?folder=${encodeURIComponent(folder)}`);
    await this.page.locator('.monaco-workbench').waitFor({ timeout: 60_000 });
  }

  /** Runs a command from the palette (F1), by its full title. */
  async runCommand(title) {
    await this.page.keyboard.press('Escape');
    await this.page.keyboard.press('F1');
    await this.input.waitFor({ state: 'visible', timeout: 10_000 });
    await this.input.fill(`>${title}`);
    await this.page.locator('.quick-input-list .monaco-list-row', { hasText: title }).first().waitFor({ timeout: 20_000 });
    await this.page.keyboard.press('Enter');
  }

  /** Waits for a quick input whose title contains `title`. */
  async waitForQuickInput(title, timeout = 20_000) {
    await this.page.locator('.quick-input-widget .quick-input-title', { hasText: title }).waitFor({ state: 'visible', timeout });
  }

  /** Types `value` into the open quick input box and presses Enter. */
  async answer(title, value) {
    await this.waitForQuickInput(title);
    await this.input.fill(value);
    await this.page.keyboard.press('Enter');
  }

  async signIn(serverUrl, token) {
    await this.runCommand('Berth: Sign In');
    await this.answer('Sign In (1/2)', serverUrl);
    await this.answer('Sign In (2/2)', token);
    await this.notification(/signed in to/);
  }

  async notification(text, timeout = 30_000) {
    await this.page.locator('.notifications-toasts .notification-list-item-message', { hasText: text }).first().waitFor({ timeout });
  }

  /** Opens the Berth view container from the activity bar. */
  async showBerth() {
    const tab = this.page.locator('.activitybar [aria-label^="Berth"]').first();
    await tab.waitFor({ timeout: 60_000 });
    // A click on the active container hides the side bar; right after another container was clicked
    // the tab can still read as active. So: look again, and click again, until the chat is there.
    for (let attempt = 1; ; attempt++) {
      const checked = await tab.getAttribute('aria-checked').catch(() => null);
      const expanded = await tab.getAttribute('aria-expanded').catch(() => null);
      const sideBar = await this.page.locator('.part.sidebar').isVisible().catch(() => false);
      if ((checked !== 'true' && expanded !== 'true') || !sideBar) await tab.click();
      try {
        await this.chat.locator('body').waitFor({ timeout: 10_000 });
        return;
      } catch (err) {
        if (attempt === 3) throw err;
      }
    }
  }

  /** Shows another view container (hides the Berth one; its webview is destroyed). */
  async showExplorer() {
    await this.page.locator('.activitybar [aria-label^="Explorer"]').first().click();
  }

  /**
   * Answers the three Start Session questions. The repository step is a quick pick (the
   * workspace's own remote, from the built-in git extension) or, when git has not found the
   * repository yet, an input box.
   */
  async startSessionUntilPrompt({ repoUrl, setup }) {
    await this.runCommand('Berth: Start Session');
    await this.waitForQuickInput('(1/3)');
    const pick = this.page.locator('.quick-input-list .monaco-list-row', { hasText: repoUrl }).first();
    if (await pick.isVisible().catch(() => false)) await pick.click();
    else await this.answer('(1/3)', repoUrl);
    await this.answer('(2/3)', setup ?? '');
    await this.waitForQuickInput('(3/3)');
  }

  /** Text of the Berth status bar item and whether its icon spins. */
  async status() {
    const item = this.statusItem.first();
    if (!(await item.isVisible().catch(() => false))) return { visible: false, text: '', spinning: false, icon: '' };
    return item.evaluate((el) => {
      const icon = el.querySelector('.codicon');
      return {
        visible: true,
        text: (el.textContent ?? '').trim(),
        spinning: !!el.querySelector('.codicon-modifier-spin'),
        icon: icon ? [...icon.classList].find((c) => c.startsWith('codicon-') && c !== 'codicon-modifier-spin') ?? '' : '',
      };
    });
  }

  /** Everything a test asserts about the chat, read in one go from inside the webview. */
  chatSnapshot() {
    return this.chat.locator('body').evaluate((body) => {
      const text = (sel) => [...body.querySelectorAll(sel)].map((e) => (e.textContent ?? '').trim());
      const textarea = body.querySelector('textarea.composer-input');
      return {
        pill: text('.status-pill')[0] ?? '',
        pillStale: !!body.querySelector('.status-pill--stale'),
        welcome: text('.welcome h2, .welcome .welcome-busy')[0] ?? '',
        connection: text('.header-connection')[0] ?? '',
        preparingTitle: text('.preparation-title')[0] ?? '',
        steps: [...body.querySelectorAll('.preparation > .steps .step')].map((li) => ({
          step: li.getAttribute('data-step'),
          state: [...li.classList].find((c) => c.startsWith('step--'))?.slice(6),
        })),
        /** The order of the step list, live or folded after ready. */
        stepOrder: [...body.querySelectorAll('.preparation .steps .step')].map((li) => li.getAttribute('data-step')),
        users: text('.conversation .msg--user .msg-text'),
        assistants: text('.conversation .msg--assistant .markdown'),
        turns: text('.conversation .turn'),
        queued: text('.queued .msg--queued .msg-text'),
        errorVisible: !!body.querySelector('.error-banner:not([hidden])'),
        errorMessage: text('.error-banner .error-message')[0] ?? '',
        errorMeta: text('.error-banner .error-meta')[0] ?? '',
        retryButton: !!body.querySelector('.error-banner .retry-button'),
        inputDisabled: textarea ? textarea.disabled : null,
        draft: textarea ? textarea.value : null,
        reason: text('.composer-reason')[0] ?? '',
        pwned: body.dataset.pwned ?? null,
        /** The changes cards: title, totals and files (`M README.md`). */
        cards: [...body.querySelectorAll('.conversation .changes-card')].map((card) => ({
          title: (card.querySelector('.changes-title')?.textContent ?? '').trim(),
          totals: (card.querySelector('.changes-head .changes-totals')?.textContent ?? '').trim(),
          files: [...card.querySelectorAll('.changes-file')].map((b) => `${b.querySelector('.file-status')?.textContent ?? ''} ${b.getAttribute('data-path')}`),
          buttons: [...card.querySelectorAll('.changes-buttons vscode-button')].map((b) => (b.textContent ?? '').trim()),
        })),
        /** The conversation's order by kind, e.g. ['user', 'assistant', 'changes', 'turn']. */
        kinds: [...body.querySelectorAll('.conversation > *')].map((el) =>
          el.classList.contains('changes-card') ? 'changes' : el.classList.contains('turn') ? 'turn' : el.classList.contains('msg--user') ? 'user' : el.classList.contains('msg--assistant') ? 'assistant' : el.className,
        ),
        summary: (body.querySelector('.changes-summary')?.textContent ?? '').replace(/\s+/g, ' ').trim(),
      };
    });
  }

  /** Polls the chat until `check(snapshot)` holds; returns that snapshot. */
  waitForChat(what, check, timeout = 60_000) {
    return this.poll(`chat: ${what}`, () => this.chatSnapshot().catch((err) => ({ error: String(err) })), check, timeout);
  }

  /** Polls the status bar item until `check(status)` holds. */
  waitForStatus(what, check, timeout = 60_000) {
    return this.poll(`status bar: ${what}`, () => this.status(), check, timeout);
  }

  async poll(what, read, check, timeout) {
    const deadline = Date.now() + timeout;
    for (;;) {
      const last = await read();
      if (!last.error && check(last)) return last;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(last)}`);
      await this.page.waitForTimeout(50);
    }
  }

  /** Types into the chat's message box and presses Enter. */
  async send(text) {
    const box = this.chat.locator('textarea.composer-input');
    await box.click();
    await box.fill(text);
    await box.press('Enter');
  }

  /** The modal dialog's message and detail, once it shows. */
  async dialog(timeout = 20_000) {
    const box = this.page.locator('.monaco-dialog-box');
    await box.waitFor({ state: 'visible', timeout });
    return {
      message: (await box.locator('.dialog-message-text').innerText().catch(() => '')).trim(),
      detail: (await box.locator('.dialog-message-detail').innerText().catch(() => '')).trim(),
      buttons: (await box.locator('.dialog-buttons .monaco-button').allInnerTexts()).map((b) => b.trim()),
    };
  }

  async clickDialogButton(label) {
    await this.page.locator('.monaco-dialog-box .dialog-buttons .monaco-button', { hasText: label }).first().click();
    await this.page.locator('.monaco-dialog-box').waitFor({ state: 'hidden', timeout: 10_000 });
  }

  /** The open quick input: its value, whether the box hides what is typed, and its validation message. */
  async quickInputState() {
    return {
      value: await this.input.inputValue().catch(() => ''),
      password: (await this.input.getAttribute('type').catch(() => null)) === 'password',
      message: (await this.page.locator('.quick-input-widget .quick-input-message').innerText().catch(() => '')).trim(),
    };
  }

  /** Fills the open quick input and waits for its validation message to match `pattern`. */
  async typeUntilMessage(value, pattern, timeout = 10_000) {
    await this.input.fill(value);
    return this.poll(`the validation message ${pattern}`, () => this.quickInputState(), (s) => pattern.test(s.message), timeout);
  }

  /** The rows of the open quick pick, as shown (label, description, detail; separators included). */
  async quickPickRows() {
    return (await this.page.locator('.quick-input-list .monaco-list-row').allInnerTexts()).map((t) => t.replace(/\s+/g, ' ').trim());
  }

  /** The text of every notification toast shown now. */
  async notificationTexts() {
    return (await this.page.locator('.notifications-toasts .notification-list-item-message').allInnerTexts()).map((t) => t.trim());
  }

  /** Picks the quick pick row containing `text` (waits for the quick input titled `title`). */
  async pick(title, text) {
    await this.waitForQuickInput(title);
    const row = this.page.locator('.quick-input-list .monaco-list-row', { hasText: text }).first();
    await row.waitFor({ timeout: 20_000 });
    await row.click();
  }

  async screenshot(name) {
    await this.page.screenshot({ path: `${this.artifacts}/${name}.png` });
  }
}
