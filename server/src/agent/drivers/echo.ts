import type { AgentDriver, TurnInput, TurnIO, TurnOutcome } from '../driver';

/**
 * The driver used when no agent is configured: it answers every message by quoting it, so a new
 * installation works end to end before a real agent (a command or an LLM endpoint) is set up.
 */
export class EchoDriver implements AgentDriver {
  readonly name = 'echo';

  async runTurn(input: TurnInput, io: TurnIO, signal: AbortSignal): Promise<TurnOutcome> {
    io.started();
    const earlier = input.transcript.filter((e) => e.role === 'user').length;
    const parts = [
      `**Echo agent** (no agent is configured on this server; start it with \`--agent-command\` or an LLM endpoint).\n\n`,
      `You said:\n\n> ${input.text.split('\n').join('\n> ')}\n\n`,
      `This conversation has ${earlier} earlier message${earlier === 1 ? '' : 's'}.`,
    ];
    for (const part of parts) {
      if (signal.aborted) return { status: 'interrupted' };
      io.output(part);
      await new Promise((r) => setTimeout(r, 20));
    }
    return { status: 'completed' };
  }
}
