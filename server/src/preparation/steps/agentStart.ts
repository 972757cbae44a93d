import { AgentConnection } from '../../sessions/agentConnection';
import { BerthError } from '../../util/errors';
import type { PreparationStepModule } from '../types';

/** Starts the agent host in the sandbox and checks its pinned protocol version. */
export const agentStart: PreparationStepModule = {
  name: 'agent_start',
  describe: () => 'starting the agent host',
  timeoutMs: (c) => c.timeouts.agentStartMs,
  async run(run, signal) {
    const { ctx } = run;
    const sandbox = run.sandbox;
    if (!sandbox) throw new BerthError('internal', 'no sandbox to start the agent in');
    const driverArgs = ctx.config.agentCommand
      ? ['--driver', 'command', '--command', ctx.config.agentCommand]
      : ['--driver', 'echo'];
    const child = sandbox.spawn(sandbox.agentHost.node, [
      sandbox.agentHost.script,
      ...driverArgs,
      '--workspace',
      sandbox.workspaceFolder,
    ]);
    const agent = new AgentConnection(child, (line) => run.log(ctx.redactor.redact(line)));
    run.agent = agent;
    const hello = await agent.handshake(ctx.config.timeouts.agentStartMs, signal);
    return { message: `agent host ${hello.version} (${hello.driver} driver)` };
  },
};
