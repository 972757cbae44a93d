// `npm run test:integration`: the in-editor suite (suite.cjs) in a real VS Code through
// @vscode/test-electron. VS Code comes from VSCODE_PATH or is downloaded (cached outside the repo);
// when neither works it says SKIPPED and why, and exits 0 without claiming a pass.
import { downloadAndUnzipVSCode, runTests } from '@vscode/test-electron';
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cleanup, createTestRepo, tempDir } from '../harness.mjs';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const cache = process.env.BERTH_E2E_CACHE ?? join(homedir(), '.cache', 'berth-e2e');
const DOWNLOAD_TIMEOUT_MS = 60_000;

function skip(why) {
  console.log(`integration: SKIPPED (not run, not passed): ${why}`);
  console.log('integration: set VSCODE_PATH to an installed VS Code executable, or run where update.code.visualstudio.com is reachable.');
  process.exit(0);
}

async function vscodeExecutable() {
  if (process.env.VSCODE_PATH) return process.env.VSCODE_PATH;
  // The download has an idle timeout of its own; the race also covers networks that swallow connections.
  const download = downloadAndUnzipVSCode({ cachePath: join(cache, 'vscode-test'), timeout: 15_000 });
  const timeout = new Promise((_, reject) => setTimeout(() => reject(new Error(`no answer within ${DOWNLOAD_TIMEOUT_MS / 1000} s`)), DOWNLOAD_TIMEOUT_MS).unref());
  try {
    return await Promise.race([download, timeout]);
  } catch (err) {
    skip(`VSCODE_PATH is not set and VS Code could not be downloaded (${err instanceof Error ? err.message.split('\n')[0] : err})`);
  }
}

async function main() {
  const executable = await vscodeExecutable();
  const build = spawnSync('node', ['esbuild.mjs'], { cwd: repoRoot, stdio: 'inherit' });
  if (build.status !== 0) throw new Error('the build failed');
  const root = tempDir('berth-integration-');
  const repo = createTestRepo(root, join(repoRoot, 'e2e/fixtures/agent.sh'));
  const userData = join(root, 'user-data');
  mkdirSync(join(userData, 'User'), { recursive: true });
  // The local provider keeps the suite independent of Docker.
  writeFileSync(join(userData, 'User', 'settings.json'), JSON.stringify({ 'berth.localServer.provider': 'local', 'security.workspace.trust.enabled': false }));
  await runTests({
    vscodeExecutablePath: executable,
    extensionDevelopmentPath: repoRoot,
    extensionTestsPath: join(repoRoot, 'e2e/integration/suite.cjs'),
    launchArgs: [repo.workspace, '--user-data-dir', userData, '--extensions-dir', join(root, 'extensions'), '--disable-workspace-trust', '--no-sandbox'],
    extensionTestsEnv: { BERTH_IT_REPO: repo.bare, BERTH_IT_USER_DATA: userData },
  });
  console.log('integration: PASSED');
}

main().then(
  () => cleanup().then(() => process.exit(0)),
  (err) => cleanup().then(() => {
    console.error(`integration: FAILED: ${err instanceof Error ? err.message : err}`);
    process.exit(1);
  }),
);
