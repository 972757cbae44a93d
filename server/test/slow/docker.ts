import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import { DEFAULT_IMAGE, dockerAvailable, runDocker } from '../../src/sandbox/devcontainer/cli';

/** Why the Docker tests cannot run here, or null when the daemon and the base image are there. */
export async function dockerReadiness(): Promise<string | null> {
  if (!(await dockerAvailable())) return 'no Docker daemon answers (run scripts/ensure-docker.sh)';
  try {
    await runDocker(['image', 'inspect', DEFAULT_IMAGE]);
  } catch {
    return `image ${DEFAULT_IMAGE} is missing (npm run images)`;
  }
  return null;
}

/** In CI a missing Docker is a failure, never a skip; locally the test skips with the reason. */
export function dockerOrSkip(t: TestContext, notReady: string | null): boolean {
  if (!notReady) return true;
  if (process.env.CI) assert.fail(`devcontainer tests need Docker in CI: ${notReady}`);
  t.skip(`Docker not available: ${notReady}`);
  return false;
}
