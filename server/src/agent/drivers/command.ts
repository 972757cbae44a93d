import { spawn } from 'node:child_process';
import { writeFileSync, rmSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AgentDriver, TurnInput, TurnIO, TurnOutcome } from '../driver';
import { killGroup } from '../../util/process';

const KILL_GRACE_MS = 2000;
const STDERR_TAIL_LINES = 20;

/**
 * Runs a user-chosen command once per turn in the workspace: the prompt on stdin, stdout streamed
 * as assistant output. The earlier conversation is in the JSON file named by BERTH_TRANSCRIPT_FILE.
 */
export class CommandDriver implements AgentDriver {
  readonly name = 'command';

  constructor(private readonly command: string) {}

  runTurn(input: TurnInput, io: TurnIO, signal: AbortSignal): Promise<TurnOutcome> {
    const dir = mkdtempSync(join(tmpdir(), 'berth-turn-'));
    const transcriptFile = join(dir, 'transcript.json');
    writeFileSync(transcriptFile, JSON.stringify(input.transcript));
    return new Promise<TurnOutcome>((resolve) => {
      const child = spawn('/bin/sh', ['-c', this.command], {
        cwd: input.workspace,
        env: { ...process.env, BERTH_TURN_ID: input.turnId, BERTH_TRANSCRIPT_FILE: transcriptFile },
        detached: true,
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      const stderrLines: string[] = [];
      let interrupted = false;
      let killTimer: NodeJS.Timeout | undefined;
      const onAbort = () => {
        interrupted = true;
        killGroup(child, 'SIGTERM');
        killTimer = setTimeout(() => killGroup(child, 'SIGKILL'), KILL_GRACE_MS);
      };
      child.on('spawn', () => {
        io.started();
        child.stdin.on('error', () => {}); // the command may not read its input
        child.stdin.end(input.text);
      });
      child.stdout.setEncoding('utf8');
      child.stdout.on('data', (text: string) => io.output(text));
      child.stderr.setEncoding('utf8');
      child.stderr.on('data', (text: string) => {
        for (const line of text.split('\n')) {
          if (!line.trim()) continue;
          stderrLines.push(line);
          if (stderrLines.length > STDERR_TAIL_LINES) stderrLines.shift();
          io.log('info', line);
        }
      });
      signal.addEventListener('abort', onAbort, { once: true });
      let spawnError: Error | undefined;
      child.on('error', (err) => {
        spawnError = err;
      });
      child.on('close', (code) => {
        signal.removeEventListener('abort', onAbort);
        if (killTimer) clearTimeout(killTimer);
        killGroup(child, 'SIGKILL'); // leftovers of the turn
        rmSync(dir, { recursive: true, force: true });
        if (spawnError) {
          io.error('agent_command_failed', `the agent command could not start: ${spawnError.message}`);
          resolve({ status: 'failed', exitCode: null });
        } else if (interrupted) {
          resolve({ status: 'interrupted', exitCode: code });
        } else if (code !== 0) {
          const tail = stderrLines.length ? `:\n${stderrLines.join('\n')}` : '';
          io.error('agent_command_failed', `the agent command exited with code ${code}${tail}`);
          resolve({ status: 'failed', exitCode: code });
        } else {
          resolve({ status: 'completed', exitCode: 0 });
        }
      });
    });
  }
}
