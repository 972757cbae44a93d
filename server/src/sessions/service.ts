import { rm, readFile } from 'node:fs/promises';
import type { FailureCode, ModelsResponse, SendMessageResponse, SessionStatus, SessionView, StartSessionRequest, StartSessionResponse, StopSessionResponse } from '@berth/protocol';
import type { ServerContext } from '../context';
import type { JobRunner } from '../preparation/jobs';
import { MessageQueue } from './queue';
import { newSessionRecord, type JobKind, type JobRecord, type NewJob, type SessionRecord } from '../store/store';
import { stepOrder, type PreparationOutcome } from '../preparation/pipeline';
import type { Membership } from '../cluster/membership';
import type { ControlCommand } from '../cluster/notices';
import type { SessionRuntime } from './runtime';
import { checkBranchName, checkRepoUrl, repoPolicy } from '../git/repoUrl';
import { splitUrlCredential } from '../vault/vault';
import { ApiError } from '@berth/protocol';
import { BerthError } from '../util/errors';
import { newSessionId, newTurnId } from '../util/ids';
import { toView } from './status';

/** How long Stop waits for an interrupted turn to end before it stops the sandbox anyway. */
const STOP_TURN_GRACE_MS = 10_000;

/** The use cases behind the HTTP routes: start, read, message, retry, interrupt, delete. */
export class SessionService {
  constructor(
    private readonly ctx: ServerContext,
    private readonly jobs: JobRunner,
    /** Several instances on one database (none: this one is alone). */
    private readonly membership: Membership | null = null,
  ) {
    this.queue = new MessageQueue(ctx);
  }

  private readonly queue: MessageQueue;

  /** Another user's session does not exist, as far as this user can tell. */
  async owned(owner: string, id: string): Promise<SessionRecord> {
    const session = await this.ctx.store.getSession(id);
    if (!session || session.owner !== owner) throw new ApiError(404, 'not_found', 'no such session');
    return session;
  }

  async exists(owner: string, id: string): Promise<boolean> {
    const session = await this.ctx.store.getSession(id);
    return !!session && session.owner === owner;
  }

  /**
   * The fast path (`autoInitiate`): validation, id, session row and durable job, nothing else.
   * Otherwise the synchronous path: the same job, awaited.
   */
  async start(owner: string, request: StartSessionRequest): Promise<{ status: number; body: StartSessionResponse }> {
    const repo = checkRepoUrl(request.repo.url, repoPolicy(this.ctx.config));
    if (!repo.ok) throw new ApiError(400, 'bad_request', repo.reason, { field: 'repo.url' });
    // A credential in the URL is used for this session, never stored in the URL (nor in the clone).
    const { url: repoUrl, credential } = splitUrlCredential(repo.url);
    if (request.repo.branch !== undefined) {
      const invalid = checkBranchName(request.repo.branch);
      if (invalid) throw new ApiError(400, 'bad_request', invalid, { field: 'repo.branch' });
    }
    const model = this.chooseModel(request.model);
    const autoInitiate = request.autoInitiate === true;
    const now = new Date().toISOString();
    const id = newSessionId();
    // Session and job are inserted in one transaction: a failure leaves neither behind.
    const job = await this.ctx.store.createSession(
      newSessionRecord(
        {
          id,
          owner,
          repoUrl,
          repoBranch: request.repo.branch ?? null,
          prompt: request.prompt ?? null,
          setup: request.setup ?? [],
          autoInitiate,
          devcontainer: request.devcontainer ?? null,
          model,
          urlCredential: credential ? this.ctx.vault.sealUrlCredential(id, credential) : null,
        },
        now,
      ),
      {
        sessionId: id,
        kind: 'prepare',
        payload: { mode: autoInitiate ? 'async' : 'sync' },
        runAt: await this.ctx.sharedClock(),
        // The synchronous caller waits on this instance's runner: another instance must not take it.
        target: autoInitiate ? null : this.ctx.config.instanceTag,
      },
    );
    this.jobs.nudge();
    if (autoInitiate) return { status: 202, body: { sessionId: id, status: 'preparing' } };

    const outcome = await this.jobs.waitFor(job!.id);
    const after = await this.ctx.store.getSession(id);
    if (outcome.result === 'ready' && after) return { status: 201, body: { sessionId: id, status: after.status } };
    const error = outcome.error ?? after?.lastError;
    throw new ApiError(422, 'preparation_failed', error?.message ?? 'preparation was cancelled', {
      step: error?.step,
      // Only a session that survived the rollback (it held data) can be retried.
      ...(after ? { sessionId: id } : {}),
    });
  }

  /** The models a start may name; none when the agent is a command. */
  models(): ModelsResponse {
    const llm = this.ctx.config.llm;
    return llm ? { models: llm.models ?? [llm.model], default: llm.model } : { models: [], default: null };
  }

  private chooseModel(requested: string | undefined): string | null {
    if (requested === undefined) return null;
    const { models } = this.models();
    if (models.length === 0) throw new ApiError(400, 'bad_request', 'this server runs a command agent: there is no model to choose', { field: 'model' });
    if (!models.includes(requested)) throw new ApiError(400, 'bad_request', `model "${requested}" is not offered here; choose one of: ${models.join(', ')}`, { field: 'model' });
    return requested;
  }

  async list(owner: string): Promise<SessionView[]> {
    return (await this.ctx.store.listSessions(owner)).map((s) => toView(s));
  }

  async get(owner: string, id: string): Promise<SessionView> {
    return toView(await this.owned(owner, id), stepOrder(this.ctx.provider.setupInsideSandbox));
  }

  async sendMessage(owner: string, id: string, text: string, attempt = 0): Promise<SendMessageResponse> {
    const session = await this.owned(owner, id);
    const waiting = session.queue?.length ?? 0;
    if (session.status === 'preparing' || session.status === 'running' || (session.status === 'ready' && waiting > 0)) {
      // The agent is busy (or messages wait already): this one waits its turn.
      const turnId = newTurnId();
      const position = await this.queue.enqueue(id, { turnId, text });
      if (position !== null) {
        if (session.status === 'ready') this.drainSoon(id);
        return { turnId, status: 'queued', position };
      }
      // The status changed meanwhile (the turn ended): take the message as that status says.
      if (attempt < 3) return this.sendMessage(owner, id, text, attempt + 1);
      throw new ApiError(409, 'conflict', 'the session changed while the message was sent; send it again');
    }
    switch (session.status) {
      case 'failed':
        throw new ApiError(409, 'not_ready', 'the session failed; retry it first');
      case 'sleeping':
        return this.resumeOrQueue(owner, session, text, attempt);
      case 'ready':
        break;
    }
    const runtime = this.ctx.runtimes.get(id);
    // Its sandbox lives on another instance, which is alive: the message goes there through the job queue.
    if (!runtime && session.instance && (await this.membership?.alive(session.instance))) return this.routeTo(session, text);
    if (!runtime || !runtime.agent.alive) return this.resumeOrQueue(owner, session, text, attempt);
    if (runtime.turn) throw new ApiError(409, 'turn_in_progress', 'the agent is still working on the previous message');
    return this.startTurn(runtime, id, newTurnId(), text);
  }

  /**
   * Runs a message on this instance's live agent. The session is claimed first (ready → running, a
   * compare-and-set): a message that loses the race is refused with nothing written.
   */
  private async startTurn(runtime: SessionRuntime, id: string, turnId: string, text: string): Promise<SendMessageResponse> {
    const claimed = !runtime.turn && (await this.ctx.lifecycle.transition(id, 'running', { from: ['ready'], patch: { lastActivityAt: new Date().toISOString() } }));
    if (!claimed) throw new ApiError(409, 'turn_in_progress', 'the agent is still working on the previous message');
    return this.runClaimedTurn(runtime, id, turnId, text);
  }

  /** Sends a turn the session was claimed for (it is `running`) to the live agent. */
  private async runClaimedTurn(runtime: SessionRuntime, id: string, turnId: string, text: string): Promise<SendMessageResponse> {
    runtime.beginTurn(turnId, text);
    await this.ctx.events.append(id, 'user_message', { turnId, text });
    try {
      await runtime.agent.startTurn(turnId, text, this.ctx.config.timeouts.initiateMs);
    } catch (err) {
      // Accepted, then the agent would not start it: the turn is recorded as failed, with why.
      runtime.abandonTurn(turnId);
      const message = this.ctx.redactor.redact(err instanceof BerthError ? err.message : String(err));
      await this.refuseTurn(id, turnId, 'turn_not_started', `the agent did not accept the message: ${message}`);
      const status = runtime.agent.alive ? 'ready' : 'sleeping';
      await this.ctx.lifecycle.transition(id, status, { from: ['running'] });
      return { turnId, status };
    }
    return { turnId, status: 'running' };
  }

  /**
   * Runs the oldest queued message once the agent is free: on this instance's live agent, or, for a
   * session whose sandbox is gone, by resuming it with that message. Called when a turn or a
   * preparation ends here, and at startup for sessions that have messages waiting.
   */
  async drainQueue(id: string): Promise<void> {
    const runtime = this.ctx.runtimes.get(id);
    if (runtime?.agent.alive) {
      if (runtime.turn) return;
      const next = await this.queue.takeForTurn(id, this.ctx.config.instanceTag);
      if (next) await this.runClaimedTurn(runtime, id, next.turnId, next.text);
      return;
    }
    const session = await this.ctx.store.getSession(id);
    if (session?.status !== 'sleeping' || !session.queue?.length) return;
    const next = await this.queue.takeForResume(id);
    if (!next) return;
    try {
      await this.begin(session, ['sleeping'], 'resume', next, 'the session is already being prepared for another message');
    } catch (err) {
      await this.queue.putBack(id, next);
      if (!(err instanceof ApiError)) throw err;
    }
  }

  private drainSoon(id: string): void {
    this.drainQueue(id).catch((err: unknown) => this.ctx.logger.error({ err, sessionId: id }, 'running a queued message failed'));
  }

  /** Sessions left with messages waiting (a restart, an instance lost): run them. */
  async drainAll(): Promise<void> {
    for (const session of await this.ctx.store.sessionsByStatus(['ready', 'sleeping'])) {
      if (session.queue?.length && (!session.instance || session.instance === this.ctx.config.instanceTag || session.status === 'sleeping')) this.drainSoon(session.id);
    }
  }

  /** Cancels a message that still waits; 404 when none with that id does (unknown, or it started). */
  async cancelQueued(owner: string, id: string, turnId: string): Promise<void> {
    await this.owned(owner, id);
    if (!(await this.queue.cancel(id, turnId))) throw new ApiError(404, 'not_found', 'no queued message with that id: it may have started already');
  }

  /** Runs a session's next queued message when its agent becomes free (the runtime's idle hook). */
  onIdle(id: string): void {
    this.drainSoon(id);
  }

  /** A turn that never ran: why, then its (failed) end, so clients close it like any other. */
  private async refuseTurn(id: string, turnId: string, code: FailureCode, message: string): Promise<void> {
    await this.ctx.events.append(id, 'error', { code, message, turnId });
    await this.ctx.events.append(id, 'turn_complete', { turnId, status: 'failed', exitCode: null, durationMs: 0 });
  }

  /** A message for a sandbox on another instance: a job addressed to that instance (see deliverRouted). */
  private async routeTo(session: SessionRecord, text: string): Promise<SendMessageResponse> {
    const turnId = newTurnId();
    const job: NewJob = { sessionId: session.id, kind: 'message', payload: { mode: 'async', turn: { turnId, text } }, runAt: await this.ctx.sharedClock(), target: session.instance ?? null };
    // Only while it is ready, and only one job at a time: a second message meanwhile is refused.
    if (!(await this.ctx.store.beginJob(session.id, ['ready'], {}, job))) throw new ApiError(409, 'turn_in_progress', 'the agent is still working on the previous message');
    return { turnId, status: 'running' };
  }

  /**
   * Runs a routed message on the instance it was addressed to: on the live agent here, or, when
   * there is none (reaped, or this instance took over from a dead one), through the resume path.
   */
  async deliverRouted(job: JobRecord, resume: (job: JobRecord) => Promise<PreparationOutcome>): Promise<PreparationOutcome> {
    const turn = job.payload.turn;
    const session = await this.ctx.store.getSession(job.sessionId);
    if (!turn || !session) return { result: 'cancelled' };
    const runtime = this.ctx.runtimes.get(session.id);
    if (runtime?.agent.alive) {
      return this.startTurn(runtime, session.id, turn.turnId, turn.text).then(
        () => ({ result: 'ready' }),
        async () => {
          // Two messages crossed on their way here: the later one is refused on the stream.
          await this.ctx.events.append(session.id, 'user_message', turn);
          await this.refuseTurn(session.id, turn.turnId, 'turn_in_progress', 'the agent is still working on the previous message');
          return { result: 'failed' };
        },
      );
    }
    if (!(await this.ctx.lifecycle.transition(session.id, 'preparing', { step: 'queued', error: null }))) return { result: 'cancelled' };
    await this.ctx.events.append(session.id, 'user_message', turn);
    return resume({ ...job, kind: 'resume' });
  }

  /**
   * A message to a session whose sandbox is gone: the message, the status and the job that
   * re-creates the sandbox and runs it, all at once; refused (nothing written) when another
   * message or a retry got there first.
   */
  private async resumeOrQueue(owner: string, session: SessionRecord, text: string, attempt: number): Promise<SendMessageResponse> {
    try {
      return await this.resumeWith(session, text);
    } catch (err) {
      // Another message got there first and is resuming the session: this one waits behind it.
      if (err instanceof ApiError && err.status === 409 && attempt < 3) return this.sendMessage(owner, session.id, text, attempt + 1);
      throw err;
    }
  }

  private async resumeWith(session: SessionRecord, text: string): Promise<SendMessageResponse> {
    const turn = { turnId: newTurnId(), text };
    await this.begin(session, ['sleeping', 'ready'], 'resume', turn, 'the session is already being prepared for another message');
    return { turnId: turn.turnId, status: 'preparing' };
  }

  private async begin(session: SessionRecord, from: SessionStatus[], kind: JobKind, turn: { turnId: string; text: string } | undefined, refused: string): Promise<void> {
    const job: NewJob = { sessionId: session.id, kind, payload: { mode: 'async', ...(turn ? { turn } : {}) }, runAt: await this.ctx.sharedClock() };
    if (!(await this.ctx.lifecycle.begin(session.id, from, job, turn))) throw new ApiError(409, 'not_ready', refused);
    this.jobs.nudge();
  }

  /**
   * Re-creates the sandbox of a sleeping session without a message (a terminal needs it running);
   * any other status is answered as it is (a failed session is retried, not woken).
   */
  async wake(owner: string, id: string): Promise<StartSessionResponse> {
    const session = await this.owned(owner, id);
    if (session.status !== 'sleeping') return { sessionId: id, status: session.status };
    await this.begin(session, ['sleeping'], 'resume', undefined, 'the session is already being resumed');
    return { sessionId: id, status: 'preparing' };
  }

  async retry(owner: string, id: string): Promise<StartSessionResponse> {
    const session = await this.owned(owner, id);
    if (session.status !== 'failed') throw new ApiError(409, 'conflict', `only a failed session can be retried (it is ${session.status})`);
    // A session that was running before keeps its workspace and conversation: resume it.
    await this.begin(session, ['failed'], session.preparedAt ? 'resume' : 'prepare', undefined, 'the session is already being retried');
    return { sessionId: id, status: 'preparing' };
  }

  async interrupt(owner: string, id: string): Promise<void> {
    const session = await this.owned(owner, id);
    if (this.interruptHere(id)) return;
    // The turn runs on the instance holding the sandbox: the command goes there (the bus).
    const elsewhere = !this.ctx.runtimes.get(id) && session.status === 'running' && session.instance;
    if (elsewhere && (await this.membership?.alive(elsewhere)) && (await this.ctx.bus.sendControl({ t: elsewhere, s: id, c: 'interrupt' }))) return;
    throw new ApiError(409, 'conflict', 'no turn is running');
  }

  /** A command sent by another instance, for a session whose sandbox may be here. */
  onControl(command: ControlCommand): void {
    if (command.t !== this.ctx.config.instanceTag) return;
    if (command.c === 'stop') {
      void this.stopHere(command.s).catch((err: unknown) => this.ctx.logger.warn({ err, sessionId: command.s }, 'stopping a sandbox failed'));
      return;
    }
    try {
      this.interruptHere(command.s);
    } catch {
      // The agent exited meanwhile: its turn ends with that, nothing left to interrupt.
    }
  }

  /**
   * Stops the sandbox and keeps the session with its changes: a checkpoint is recorded, the
   * session sleeps, and the next message resumes it. A running turn is interrupted first.
   */
  async stop(owner: string, id: string): Promise<StopSessionResponse> {
    const session = await this.owned(owner, id);
    if (session.status === 'preparing') throw new ApiError(409, 'not_ready', 'the session is being prepared; stop it once it is ready, or delete it');
    if (session.status === 'sleeping' || session.status === 'failed') return { sessionId: id, status: session.status };
    if (this.ctx.runtimes.get(id)) {
      await this.stopHere(id);
      return { sessionId: id, status: 'sleeping' };
    }
    const elsewhere = session.instance;
    if (elsewhere && elsewhere !== this.ctx.config.instanceTag && (await this.membership?.alive(elsewhere))) {
      if (await this.ctx.bus.sendControl({ t: elsewhere, s: id, c: 'stop' })) return { sessionId: id, status: session.status };
    }
    // Nothing runs it anywhere (its instance is gone): it is asleep already, in all but name.
    await this.ctx.lifecycle.transition(id, 'sleeping', { patch: { sandbox: null } });
    return { sessionId: id, status: 'sleeping' };
  }

  /** Stops this instance's sandbox of the session (interrupting its turn, which then ends normally). */
  private async stopHere(id: string): Promise<void> {
    const runtime = this.ctx.runtimes.get(id);
    if (!runtime) return;
    if (runtime.turn) {
      this.interruptHere(id);
      await runtime.turnEnded(STOP_TURN_GRACE_MS);
    }
    await runtime.dispose();
    await this.ctx.lifecycle.transition(id, 'sleeping', { patch: { sandbox: null } });
  }

  /** Interrupts the turn running on this instance's agent; false when there is none. */
  private interruptHere(id: string): boolean {
    const runtime = this.ctx.runtimes.get(id);
    const turn = runtime?.turn;
    if (!runtime || !turn) return false;
    runtime.agent.send({ type: 'interrupt', turnId: turn.turnId });
    return true;
  }

  /** Cancels any preparation, destroys the sandbox and removes the session and its data. */
  async delete(owner: string, id: string): Promise<void> {
    const session = await this.owned(owner, id);
    await this.jobs.cancelSession(id, 'deleted');
    await this.ctx.runtimes.get(id)?.dispose({ checkpoint: false });
    if (session.sandbox) await this.ctx.teardown.destroy(session.sandbox, id);
    await this.ctx.store.deleteSession(id);
    await Promise.all([
      this.ctx.checkpoints.discard(id),
      rm(this.ctx.paths.workspace(id), { recursive: true, force: true }),
      rm(this.ctx.paths.shared(id), { recursive: true, force: true }),
      rm(this.ctx.paths.sessionLog(id), { force: true }),
    ]);
  }

  async log(owner: string, id: string): Promise<string> {
    await this.owned(owner, id);
    try {
      return await readFile(this.ctx.paths.sessionLog(id), 'utf8');
    } catch {
      return '';
    }
  }
}
