// `npm run test:e2e`: the Berth extension in a real VS Code (code-server) driven through Chromium.
// Provisions the tools (cached outside the repo), builds the vsix, starts berth-server and
// code-server, runs the scenarios, writes screenshots and a timing report to test-artifacts/e2e/,
// and always cleans up. Exit code 0 only when every scenario passed.
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { cleanup, createBerthServer, createProfile, createTestRepo, dockerAnswers, freePort, onCleanup, readText, startCodeServer, tempDir } from './harness.mjs';
import { scenarios } from './scenarios.mjs';
import { Workbench } from './workbench.mjs';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..');
const artifacts = join(repoRoot, 'test-artifacts', 'e2e');
const TIMEOUT_MS = Number(process.env.BERTH_E2E_TIMEOUT_MS ?? 9 * 60_000);
const onlyIds = process.argv.slice(2).map(Number).filter(Boolean);

const report = [];
const say = (line) => {
  report.push(line);
  console.log(`e2e: ${line}`);
};
const phase = async (name, fn) => {
  const started = Date.now();
  const result = await fn();
  say(`${name}: ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return result;
};

function provision() {
  const r = spawnSync('bash', [join(repoRoot, 'scripts/e2e/provision.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  if (r.status !== 0) throw new Error(`provisioning failed (exit ${r.status})`);
  return Object.fromEntries(r.stdout.split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

function buildVsix() {
  const r = spawnSync('npm', ['run', '--silent', 'package'], { cwd: repoRoot, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`npm run package failed:\n${r.stdout}\n${r.stderr}`);
  return join(repoRoot, 'berth.vsix');
}

async function main() {
  rmSync(artifacts, { recursive: true, force: true });
  mkdirSync(artifacts, { recursive: true });
  const tools = await phase('provision (cache: ' + (process.env.BERTH_E2E_CACHE ?? '~/.cache/berth-e2e') + ')', () => provision());
  const vsix = await phase('build the vsix', () => buildVsix());

  const root = tempDir('berth-e2e-');
  const repo = createTestRepo(root, join(repoRoot, 'e2e/fixtures/agent.sh'));
  const provider = dockerAnswers() ? 'devcontainer' : 'local';
  if (provider === 'local' && process.env.CI === 'true') throw new Error('CI=true but no Docker daemon answers: the e2e must use the devcontainer provider in CI');
  const berthPort = await freePort();
  const serverUrl = `http://127.0.0.1:${berthPort}`;
  const profile = await phase('fresh VS Code profile, vsix installed', () =>
    createProfile({ node24: tools.NODE24, codeServer: tools.CODE_SERVER, vsix, runDir: join(root, 'vscode'), serverUrl }),
  );
  // The server is the one the vsix carries (what users get), with its own node_modules.
  const cli = join(profile.extensionDir, 'dist/server/cli.js');
  const berth = createBerthServer({ cli, dataDir: join(root, 'berth-data'), port: berthPort, provider, artifacts });
  await phase(`start the vsix's berth-server (${provider} provider)`, () => berth.start());
  const cs = await phase('start code-server', () =>
    freePort().then((port) => startCodeServer({ node24: tools.NODE24, codeServer: tools.CODE_SERVER, profile, workspace: repo.workspace, port, artifacts })),
  );
  onCleanup('code-server logs', () => spawnSync('sh', ['-c', `cp -r ${JSON.stringify(join(cs.data, 'logs'))} ${JSON.stringify(join(artifacts, 'vscode-logs'))}`]));

  const { chromium } = await import(pathToFileURL(tools.PLAYWRIGHT).href);
  const browser = await chromium.launch({
    executablePath: tools.CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  onCleanup('chromium', () => browser.close());
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  const wb = new Workbench(page, { artifacts });
  await phase('open the workbench and sign in', async () => {
    await wb.open(cs.url, repo.workspace);
    await wb.showBerth();
    await wb.signIn(berth.url, berth.token);
  });

  const shared = {};
  const results = new Map();
  for (const scenario of scenarios) {
    if (onlyIds.length && !onlyIds.includes(scenario.id)) continue;
    const label = `scenario ${scenario.id}: ${scenario.name}`;
    const blocked = (scenario.needs ?? []).filter((id) => results.get(id) !== 'passed');
    if (blocked.length) {
      results.set(scenario.id, 'skipped');
      say(`SKIP ${label} (needs scenario ${blocked.join(', ')})`);
      continue;
    }
    const t = {
      wb,
      berth,
      provider,
      repo,
      shared,
      profile,
      workbenchUrl: cs.url,
      artifacts,
      timing: (what, ms) => say(`  timing: ${what}: ${ms} ms`),
      note: (text) => say(`  ${text}`),
    };
    const started = Date.now();
    try {
      await scenario.run(t);
      results.set(scenario.id, 'passed');
      say(`PASS ${label} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
    } catch (err) {
      results.set(scenario.id, 'failed');
      say(`FAIL ${label} (${((Date.now() - started) / 1000).toFixed(1)} s)\n    ${String(err instanceof Error ? err.message : err).replace(/\n/g, '\n    ')}`);
      await wb.screenshot(`fail-scenario-${scenario.id}`).catch(() => {});
      await page.keyboard.press('Escape').catch(() => {});
    }
  }
  await afterRun({ berth, profile, berthDataDir: join(root, 'berth-data'), typedValues: shared.typedValues ?? [], otherTokens: shared.otherTokens ?? [] });
  const failed = [...results.values()].filter((r) => r !== 'passed').length + (leakedToken ? 1 : 0);
  say(`${results.size - failed}/${results.size} scenarios passed`);
  return failed === 0;
}

let leakedToken = false;

/** The files under `dirs` whose bytes contain `value` (binary files such as SQLite databases included). */
function filesContaining(value, dirs) {
  const r = spawnSync('grep', ['-rlF', '--binary-files=text', '-e', value, '--', ...dirs], { encoding: 'utf8' });
  return r.stdout.split('\n').filter(Boolean);
}

/**
 * The extension's own measurements, and a check that no access token reached a log; nor did the git
 * credential tokens and secret values typed into the scenarios' password boxes, which must also be
 * absent from VS Code's state and storage (the whole profile) and from the server's data dir (sealed).
 */
async function afterRun({ berth, profile, berthDataDir, typedValues, otherTokens }) {
  const logs = spawnSync('sh', ['-c', `find ${JSON.stringify(profile.data)}/logs ${JSON.stringify(artifacts)} -type f -name '*.log' -print0 | xargs -0 cat`], {
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
  }).stdout;
  for (const line of logs.split('\n').filter((l) => /start: (the chat showed|session .* accepted)/.test(l))) {
    say(`  extension log: ${line.replace(/^\S+ \S+ \[\w+\] /, '')}`);
  }
  const embeddedToken = readText(join(profile.data, 'User/globalStorage/berth.berth/server/token')).trim();
  const tokens = [berth.token, embeddedToken, ...otherTokens].filter(Boolean);
  leakedToken = tokens.some((token) => logs.includes(token));
  say(leakedToken ? 'FAIL an access token appears in a log' : `the access tokens (${tokens.length}) appear in no log (VS Code, extension, servers)`);
  if (typedValues.length === 0) return;
  const typedInLogs = typedValues.filter((value) => logs.includes(value)).length;
  const stored = [...new Set(typedValues.flatMap((value) => filesContaining(value, [profile.data, berthDataDir])))];
  if (typedInLogs || stored.length) {
    leakedToken = true;
    say(`FAIL ${typedInLogs} of the typed credential tokens and secret values appear in a log; in clear in stored files: ${stored.join(', ') || 'none'}`);
  } else {
    say(`the typed credential tokens and secret values (${typedValues.length}) appear in no log, in no VS Code state or storage, and not in clear in the server's data dir`);
  }
}

const started = Date.now();
let finished = false;
const finish = async (ok, why) => {
  if (finished) return;
  finished = true;
  if (why) say(why);
  await cleanup();
  say(`total ${((Date.now() - started) / 1000).toFixed(1)} s; screenshots and logs in ${artifacts}`);
  mkdirSync(artifacts, { recursive: true });
  writeFileSync(join(artifacts, 'report.txt'), report.join('\n') + '\n');
  process.exit(ok ? 0 : 1);
};
const timer = setTimeout(() => void finish(false, `TIMEOUT after ${TIMEOUT_MS / 1000} s`), TIMEOUT_MS);
timer.unref();
for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => void finish(false, `interrupted by ${signal}`));
// A stray rejection must not end the process before the cleanup has run.
process.on('unhandledRejection', (err) => void finish(false, `ERROR (unhandled) ${err instanceof Error ? err.stack : err}`));
process.on('uncaughtException', (err) => void finish(false, `ERROR (uncaught) ${err.stack}`));
main().then(
  (ok) => finish(ok),
  (err) => finish(false, `ERROR ${err instanceof Error ? err.stack : err}`),
);
