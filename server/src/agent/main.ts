// The agent host entry point: runs inside the sandbox, speaks JSON lines on stdin/stdout.
import { parseArgs } from 'node:util';
import { createInterface } from 'node:readline';
import type { AgentMessage } from '@berth/protocol';
import { AgentHost } from './host';
import { CommandDriver } from './drivers/command';
import { EchoDriver } from './drivers/echo';
import { LLM_OPTIONS, createLlmDriver } from './drivers/llm';
import type { AgentDriver } from './driver';

const { values } = parseArgs({
  options: {
    driver: { type: 'string', default: 'echo' },
    command: { type: 'string' },
    workspace: { type: 'string', default: process.cwd() },
    ...LLM_OPTIONS,
  },
});

function makeDriver(): AgentDriver {
  switch (values.driver) {
    case 'command':
      if (!values.command) throw new Error('--driver command needs --command');
      return new CommandDriver(values.command);
    case 'llm':
      return createLlmDriver(values);
    case 'echo':
      return new EchoDriver();
    default:
      throw new Error(`unknown driver "${values.driver}"`);
  }
}

const send = (message: AgentMessage) => {
  process.stdout.write(JSON.stringify(message) + '\n');
};

const host = new AgentHost(makeDriver(), values.workspace, send);
host.hello();
const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
lines.on('line', (line) => {
  if (host.handleLine(line) === 'shutdown') process.exit(0);
});
// The server is gone: nothing left to serve.
lines.on('close', () => process.exit(0));
