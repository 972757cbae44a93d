import { writeFileSync, rmSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AgentDriver, TurnInput, TurnIO, TurnOutcome } from '../driver';
import { startProcess } from '../../util/process';
import { spawnHere } from '../../util/launcher';

const KILL_GRACE_MS = 2000;
const STDERR_TAIL_LINES = 20;

/**
 * Runs a user-chosen command once per turn in the workspace: the prompt on stdin, stdout streamed
 * as assistant output. The earlier conversation is in the JSON file named by BERTH_TRANSCRIPT_FILE.
 */
export class CommandDriver implements AgentDriver {
  readonly name = 'command';

  constructor(private readonly command: string) {}

  async runTurn(input: TurnInput, io: TurnIO, signal: AbortSignal): Promise<TurnOutcome> {
    const dir = mkdtempSync(join(tmpdir(), 'berth-turn-'));
    const transcriptFile = join(dir, 'transcript.json');
    writeFileSync(transcriptFile, JSON.stringify(input.transcript));
    const stderrLines: string[] = [];
    try {
      const running = startProcess('/bin/sh', ['-c', this.command], {
        spawner: spawnHere,
        cwd: input.workspace,
        env: { ...process.env, BERTH_TURN_ID: input.turnId, BERTH_TRANSCRIPT_FILE: transcriptFile },
        input: input.text,
        // A turn has no time limit of its own: it ends, or it is interrupted.
        timeoutMs: 2 ** 31 - 1,
        signal,
        killGraceMs: KILL_GRACE_MS,
        onText: (text, stream) => {
          if (stream === 'stdout') io.output(text);
        },
        onLine: (line, stream) => {
          if (stream !== 'stderr' || !line.trim()) return;
          stderrLines.push(line);
          if (stderrLines.length > STDERR_TAIL_LINES) stderrLines.shift();
          io.log('info', line);
        },
      });
      running.child.once('spawn', () => io.started());
      const result = await running.done;
      if (result.spawnError) {
        io.error('agent_command_failed', `the agent command could not start: ${result.spawnError.message}`);
        return { status: 'failed', exitCode: null };
      }
      if (result.aborted) return { status: 'interrupted', exitCode: result.exitCode };
      if (result.exitCode !== 0) {
        const tail = stderrLines.length ? `:\n${stderrLines.join('\n')}` : '';
        io.error('agent_command_failed', `the agent command exited with code ${result.exitCode}${tail}`);
        return { status: 'failed', exitCode: result.exitCode };
      }
      return { status: 'completed', exitCode: 0 };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
}
