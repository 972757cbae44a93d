// berth-server: `serve` runs the backend; `token` prints the local user's token.
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { defaultConfig, dataPaths, type WarmPoolSpec } from './config';
import { ensureLocalToken, parseTokens } from './http/auth';
import { DataDirInUseError, startServer } from './app';
import { redactUrlCredentials, SERVER_EXIT_CODES, type ServerAnnouncement } from '@berth/protocol';
import { checkRepoUrl, repoPolicy } from './git/repoUrl';
import { parseWarmPoolFlag, readWarmPoolFile } from './pool/spec';
import { isPostgresUrl } from './store/open';
import { defaultAgentHostScript } from './paths';

const USAGE = `usage:
  berth-server serve [--host 127.0.0.1] [--port 8717] [--data-dir DIR] [--provider local|devcontainer]
                     [--store postgres://USER:PASSWORD@HOST:PORT/DB] [--instance-id NAME] [--job-lease SECONDS]
                     [--default-image berth/base:bookworm]
                     [--allow-local-repos] [--allow-http] [--agent-command CMD] [--max-preparations N]
                     [--warm-pool URL[#BRANCH]=N (repeatable: N sandboxes kept ready; devcontainer provider)]
                     [--warm-pool-file FILE (JSON {"pools":[{repo, branch?, size, setup?, devcontainer?}]})]
                     [--llm-base-url URL --llm-model MODEL | --llm-models A,B,C (the first is the default)] [--max-tool-rounds N] [--max-turn-seconds S]
                     [--idle-timeout SECONDS] [--setup-timeout SECONDS] [--clone-timeout SECONDS]
                     [--mirror-max-age DAYS (unused repo mirrors are removed after it; default 14)]
                     [--checkpoint-max-file-mb MB (checkpoints leave larger files out and name them; default 50)]
                     [--image-max-age DAYS (images built from repo configs and unused are removed after it; default 14)]
                     [--start-rate PER_MINUTE (0: unlimited)] [--start-burst N] [--log-level info]
                     [--announce json (a JSON line on stdout: listening, or data dir in use)]
  berth-server token [--data-dir DIR]

Store: SQLite in DIR by default; --store (or BERTH_STORE) postgres://… lets several instances share one database.
Tokens: BERTH_TOKENS="alice:tokA,bob:tokB"; without it, user "local" gets a random token in DIR/token.
Credentials and secrets are sealed with BERTH_SECRET_KEY (32 bytes, hex or base64; required with PostgreSQL,
the same on every instance), else with a key file created in DIR. --allow-http allows plain http:// repos
(tests, private networks: credentials would cross the network unencrypted).
LLM agent: --llm-base-url (any OpenAI-compatible endpoint, e.g. https://api.openai.com/v1) makes the
built-in llm driver the default; its API key comes from BERTH_LLM_API_KEY.`;

function fail(message: string): never {
  process.stderr.write(`berth-server: ${message}\n\n${USAGE}\n`);
  process.exit(SERVER_EXIT_CODES.usage);
}

/** With `--announce json`: one machine-readable line for the launcher. */
let announceJson = false;
function announce(line: ServerAnnouncement): void {
  if (announceJson) process.stdout.write(JSON.stringify(line) + '\n');
}

function positiveInt(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) fail(`--${name} must be a non-negative integer`);
  return n;
}

const defaultDataDir = () => process.env.BERTH_DATA_DIR ?? join(homedir(), '.berth');

async function main(): Promise<void> {
  const [command, ...rest] = process.argv.slice(2);
  if (command === undefined || command === '--help' || command === '-h') {
    process.stdout.write(USAGE + '\n');
    return;
  }
  if (command === 'token') {
    const { values } = parseArgs({ args: rest, options: { 'data-dir': { type: 'string' } } });
    const dataDir = resolve(values['data-dir'] ?? defaultDataDir());
    const file = dataPaths(dataDir).tokenFile;
    if (!existsSync(file)) fail(`no token in ${dataDir}; start the server once with this --data-dir`);
    process.stdout.write(ensureLocalToken(file) + '\n');
    return;
  }
  if (command !== 'serve') fail(`unknown command "${command}"`);

  let values;
  try {
    ({ values } = parseArgs({
      args: rest,
      options: {
        host: { type: 'string', default: '127.0.0.1' },
        port: { type: 'string', default: '8717' },
        'data-dir': { type: 'string' },
        store: { type: 'string' },
        'instance-id': { type: 'string' },
        'job-lease': { type: 'string' },
        provider: { type: 'string', default: 'local' },
        'allow-local-repos': { type: 'boolean', default: false },
        'allow-http': { type: 'boolean', default: false },
        'agent-command': { type: 'string' },
        'llm-base-url': { type: 'string' },
        'llm-model': { type: 'string' },
        'llm-models': { type: 'string' },
        'max-tool-rounds': { type: 'string' },
        'max-turn-seconds': { type: 'string' },
        'agent-host': { type: 'string' },
        'default-image': { type: 'string' },
        'max-preparations': { type: 'string' },
        'warm-pool': { type: 'string', multiple: true },
        'warm-pool-file': { type: 'string' },
        'idle-timeout': { type: 'string' },
        'mirror-max-age': { type: 'string' },
        'checkpoint-max-file-mb': { type: 'string' },
        'image-max-age': { type: 'string' },
        'setup-timeout': { type: 'string' },
        'clone-timeout': { type: 'string' },
        'start-rate': { type: 'string' },
        'start-burst': { type: 'string' },
        'log-level': { type: 'string', default: process.env.BERTH_LOG_LEVEL ?? 'info' },
        announce: { type: 'string' },
      },
    }));
  } catch (err) {
    fail((err as Error).message);
  }
  if (values.announce !== undefined && values.announce !== 'json') fail('--announce must be json');
  announceJson = values.announce === 'json';
  const provider = values.provider;
  if (provider !== 'local' && provider !== 'devcontainer') fail('--provider must be local or devcontainer');
  const port = positiveInt('port', values.port, 8717);
  if (port > 65535) fail('--port must be at most 65535');
  const dataDir = resolve(values['data-dir'] ?? defaultDataDir());
  const store = values.store ?? process.env.BERTH_STORE ?? null;
  if (store !== null && store !== '' && !isPostgresUrl(store)) fail('--store must be a postgres:// URL (SQLite is the default)');
  const instanceId = values['instance-id'] ?? process.env.BERTH_INSTANCE_ID;
  if (instanceId !== undefined && !/^[A-Za-z0-9_.-]{1,64}$/.test(instanceId)) fail('--instance-id must be 1-64 letters, digits, ".", "_" or "-"');

  let tokens: Map<string, string>;
  try {
    tokens = process.env.BERTH_TOKENS ? parseTokens(process.env.BERTH_TOKENS) : new Map<string, string>();
  } catch (err) {
    fail((err as Error).message);
  }
  let localToken = false;
  if (tokens.size === 0) {
    tokens.set('local', ensureLocalToken(dataPaths(dataDir).tokenFile));
    localToken = true;
  }

  const llmBaseUrl = values['llm-base-url'];
  if (llmBaseUrl !== undefined) {
    if (values['agent-command'] !== undefined) fail('--agent-command and --llm-base-url choose different agents; give one of them');
    if (!/^https?:\/\/[^/\s]+/i.test(llmBaseUrl)) fail('--llm-base-url must be an http:// or https:// URL');
    if (values['llm-model'] && values['llm-models']) fail('give --llm-model or --llm-models, not both');
    if (!values['llm-model'] && !values['llm-models']) fail('--llm-base-url needs --llm-model (or --llm-models a,b,c)');
  } else if (values['llm-model'] !== undefined || values['llm-models'] !== undefined) fail('--llm-model needs --llm-base-url');
  const models = (values['llm-models'] ?? values['llm-model'] ?? '').split(',').map((m) => m.trim()).filter(Boolean);
  if (llmBaseUrl !== undefined && models.length === 0) fail('--llm-models needs at least one model');
  const llm = llmBaseUrl
    ? {
        baseUrl: llmBaseUrl,
        model: models[0]!,
        models,
        apiKey: process.env.BERTH_LLM_API_KEY || null,
        ...(values['max-tool-rounds'] !== undefined ? { maxToolRounds: positiveInt('max-tool-rounds', values['max-tool-rounds'], 0) } : {}),
        ...(values['max-turn-seconds'] !== undefined ? { maxTurnMs: positiveInt('max-turn-seconds', values['max-turn-seconds'], 0) * 1000 } : {}),
      }
    : null;

  const base = defaultConfig({ dataDir, agentHostScript: resolve(values['agent-host'] ?? defaultAgentHostScript()) });
  if (!existsSync(base.agentHostScript)) fail(`agent host bundle not found at ${base.agentHostScript}; run "npm run build"`);
  // Per-user session starts: a token bucket (`--start-rate 0` turns it off).
  const startRatePerMinute = positiveInt('start-rate', values['start-rate'], base.startRate?.perMinute ?? 0);
  const startRate =
    startRatePerMinute === 0
      ? null
      : { perMinute: startRatePerMinute, burst: Math.max(1, positiveInt('start-burst', values['start-burst'], base.startRate?.burst ?? 1)) };
  const config = {
    ...base,
    startRate,
    host: values.host,
    port,
    store: store || null,
    // Names this instance among those sharing the database (default: derived from the data dir).
    instanceTag: instanceId ?? base.instanceTag,
    // How long a dead instance's jobs and sessions wait before another instance takes them over.
    jobLeaseMs: Math.max(1, positiveInt('job-lease', values['job-lease'], base.jobLeaseMs / 1000)) * 1000,
    provider,
    defaultImage: values['default-image'] ?? base.defaultImage,
    // An air-gapped site can serve the Dev Containers CLI's control manifest from a mirror.
    controlManifestUrl: process.env.BERTH_CONTROL_MANIFEST_URL || base.controlManifestUrl,
    allowLocalRepos: values['allow-local-repos'] === true,
    allowHttp: values['allow-http'] === true,
    secretKey: process.env.BERTH_SECRET_KEY || null,
    tokens,
    agentCommand: values['agent-command'] ?? null,
    llm,
    maxConcurrentPreparations: Math.max(1, positiveInt('max-preparations', values['max-preparations'], base.maxConcurrentPreparations)),
    idleTimeoutMs: positiveInt('idle-timeout', values['idle-timeout'], base.idleTimeoutMs / 1000) * 1000,
    mirrorMaxAgeMs: positiveInt('mirror-max-age', values['mirror-max-age'], base.mirrorMaxAgeMs / 86_400_000) * 86_400_000,
    imageMaxAgeMs: positiveInt('image-max-age', values['image-max-age'], base.imageMaxAgeMs / 86_400_000) * 86_400_000,
    checkpointMaxFileBytes: positiveInt('checkpoint-max-file-mb', values['checkpoint-max-file-mb'], base.checkpointMaxFileBytes / 1_048_576) * 1_048_576,
    timeouts: {
      ...base.timeouts,
      setupCommandMs: positiveInt('setup-timeout', values['setup-timeout'], base.timeouts.setupCommandMs / 1000) * 1000,
      cloneMs: positiveInt('clone-timeout', values['clone-timeout'], base.timeouts.cloneMs / 1000) * 1000,
    },
    logLevel: values['log-level'],
  } as const;

  const warmPool = warmPoolSpecs(values['warm-pool'] ?? [], values['warm-pool-file'], config);
  const server = await startServer({ ...config, warmPool });
  process.stdout.write(`listening on ${server.url}\n`);
  announce({ type: 'listening', url: server.url, pid: process.pid });
  if (localToken) {
    const self = process.argv[1] ?? 'berth-server';
    process.stdout.write(`token for user "local": run \`node ${self} token --data-dir ${dataDir}\`\n`);
  }
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    server.ctx.logger.info({ signal }, 'shutting down');
    const force = setTimeout(() => process.exit(1), 10_000);
    force.unref();
    void server.close().then(() => process.exit(0));
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

/** The warm pool from its flags, each repository checked as a start's would be. */
function warmPoolSpecs(flags: string[], file: string | undefined, config: { provider: string; allowLocalRepos: boolean; allowHttp: boolean }): WarmPoolSpec[] {
  let specs: WarmPoolSpec[];
  try {
    specs = [...flags.map(parseWarmPoolFlag), ...(file ? readWarmPoolFile(resolve(file)) : [])];
  } catch (err) {
    fail((err as Error).message);
  }
  if (specs.length > 0 && config.provider !== 'devcontainer') fail('--warm-pool needs --provider devcontainer');
  for (const spec of specs) {
    const check = checkRepoUrl(spec.repo, repoPolicy(config));
    if (!check.ok) fail(`--warm-pool ${redactUrlCredentials(spec.repo)}: ${check.reason}`);
  }
  return specs;
}

process.on('unhandledRejection', (err) => {
  process.stderr.write(`berth-server: unhandled rejection: ${err instanceof Error ? err.message : String(err)}\n`);
});

main().catch((err: unknown) => {
  process.stderr.write(`berth-server: ${err instanceof Error ? err.message : String(err)}\n`);
  if (err instanceof DataDirInUseError) {
    announce({ type: 'data_dir_in_use', pid: err.pid });
    process.exit(SERVER_EXIT_CODES.dataDirInUse);
  }
  process.exit(SERVER_EXIT_CODES.failed);
});
