import { AgentConnection } from '../../agent/connection';
import { BerthError } from '../../util/errors';
import type { PreparationStepModule } from '../types';
import type { LlmConfig } from '../../config';

function llmDriverArgs(llm: LlmConfig, model: string | null | undefined): string[] {
  const args = ['--driver', 'llm', '--llm-base-url', llm.baseUrl, '--llm-model', model ?? llm.model];
  const seconds = (ms: number) => String(ms / 1000);
  if (llm.maxToolRounds !== undefined) args.push('--max-tool-rounds', String(llm.maxToolRounds));
  if (llm.maxTurnMs !== undefined) args.push('--max-turn-seconds', seconds(llm.maxTurnMs));
  if (llm.commandTimeoutMs !== undefined) args.push('--command-timeout-seconds', seconds(llm.commandTimeoutMs));
  if (llm.maxRetries !== undefined) args.push('--llm-max-retries', String(llm.maxRetries));
  if (llm.retryBaseMs !== undefined) args.push('--llm-retry-base-ms', String(llm.retryBaseMs));
  return args;
}

/** Starts the agent host in the sandbox and checks its pinned protocol version. */
export const agentStart: PreparationStepModule = {
  name: 'agent_start',
  describe: () => 'starting the agent host',
  timeoutMs: (c) => c.timeouts.agentStartMs,
  // Setup inside the sandbox and the agent host's start are independent: the first turn only
  // comes after setup. (Where setup runs before the sandbox there is no sandbox yet.)
  startsEarly: (run) => run.sandbox !== null,
  async run(run, signal) {
    const { ctx } = run;
    if (run.warm?.agentReused && run.agent) return { message: 'agent host already running in the warm sandbox' };
    const sandbox = run.sandbox;
    if (!sandbox) throw new BerthError('internal', 'no sandbox to start the agent in');
    const llm = ctx.config.llm;
    const driverArgs = ctx.config.agentCommand
      ? ['--driver', 'command', '--command', ctx.config.agentCommand]
      : llm
        ? llmDriverArgs(llm, run.session.model)
        : ['--driver', 'echo'];
    // Secrets exposed to the agent are in its (and its tools') environment; setup-only ones never are.
    const child = sandbox.spawn(sandbox.agentHost.node, [sandbox.agentHost.script, ...driverArgs, '--workspace', sandbox.workspaceFolder], { env: run.secrets.agent });
    const agent = new AgentConnection(child, (line) => run.log(ctx.redactor.redact(line)));
    run.agent = agent;
    // The API key goes on stdin, first: argv shows in `ps`, and the environment of the host is
    // readable (/proc/<pid>/environ) by every command the model runs.
    if (!ctx.config.agentCommand && llm?.apiKey) agent.send({ type: 'init', secrets: { llmApiKey: llm.apiKey } });
    const hello = await agent.handshake(ctx.config.timeouts.agentStartMs, signal);
    return { message: `agent host ${hello.version} (${hello.driver} driver)` };
  },
};
