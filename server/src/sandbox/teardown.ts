// Destroying sandboxes without forgetting one: a sandbox the provider could not destroy (Docker
// refused, or timed out) is logged and recorded in the store, and the reaper tries again until it
// is gone. Nothing that destroys a sandbox swallows the failure.
import type { Logger } from 'pino';
import type { Store } from '../store/store';
import { errorMessage } from '../util/errors';
import type { Sandbox, SandboxProvider, SandboxRef } from './provider';

export class SandboxTeardown {
  constructor(
    private readonly deps: { store: Store; provider: SandboxProvider; logger: Logger; instance: string },
  ) {}

  /** Destroys a live sandbox (its own processes too); a failure is recorded for the reaper. */
  async destroySandbox(sandbox: Sandbox, sessionId: string | null): Promise<void> {
    try {
      await sandbox.destroy();
    } catch (err) {
      await this.failed(sandbox.ref, sessionId, err);
    }
  }

  /** Destroys a sandbox known only by its reference (after a restart, an adoption, a delete). */
  async destroy(ref: SandboxRef, sessionId: string | null): Promise<void> {
    try {
      await this.deps.provider.destroy(ref);
    } catch (err) {
      await this.failed(ref, sessionId, err);
    }
  }

  private async failed(ref: SandboxRef, sessionId: string | null, err: unknown): Promise<void> {
    const error = errorMessage(err);
    this.deps.logger.error({ sessionId, ref, err: error }, 'could not destroy a sandbox: the reaper tries again');
    await this.deps.store
      .recordDoomed({ ref: JSON.stringify(ref), instance: this.deps.instance, sessionId, error })
      .catch((recordErr: unknown) => this.deps.logger.error({ err: errorMessage(recordErr), ref }, 'could not record a sandbox to destroy'));
  }

  /** The reaper's round: every recorded sandbox of this instance tried again; the gone ones forgotten. */
  async retry(): Promise<number> {
    let destroyed = 0;
    for (const doomed of await this.deps.store.listDoomed(this.deps.instance)) {
      try {
        await this.deps.provider.destroy(JSON.parse(doomed.ref) as SandboxRef);
        await this.deps.store.forgetDoomed(doomed.ref);
        destroyed++;
        this.deps.logger.info({ sessionId: doomed.sessionId, attempts: doomed.attempts + 1 }, 'destroyed a sandbox on a later attempt');
      } catch (err) {
        await this.deps.store.recordDoomed({ ref: doomed.ref, instance: this.deps.instance, sessionId: doomed.sessionId, error: errorMessage(err) });
      }
    }
    return destroyed;
  }
}
