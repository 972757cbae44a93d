// What a failed dev container start says to the user: a code to act on and a short first line that
// says what failed and what to do, then at most a few lines that explain it (a failing command's
// output, the build's error). Never server paths, stack frames or the same sentence twice; the
// CLI's whole output stays in the session log.
import { tmpdir } from 'node:os';
import type { FailureCode } from '@berth/protocol';
import type { DevcontainerError } from './cli.js';
import { stripAnsi } from './progress.js';

export type SandboxFailureCode = Extract<
  FailureCode,
  'config_invalid' | 'config_unsupported' | 'image_unavailable' | 'feature_unavailable' | 'lifecycle_failed' | 'sandbox_failed' | 'sandbox_timeout'
>;

export interface SandboxFailure {
  code: SandboxFailureCode;
  message: string;
}

const DETAIL_LINES = 8;

/** Replaces the server's own paths: the clone becomes the repository, the rest is dropped. */
export function scrubPaths(text: string, workspaceFolder: string, serverRoots: readonly string[]): string {
  let out = text.split(workspaceFolder + '/').join('').split(workspaceFolder).join('the repository');
  for (const root of [...serverRoots, tmpdir()].filter((r) => r.length > 1)) {
    out = out.replace(new RegExp(`${escapeRegExp(root)}/\\S*`, 'g'), (path) => `…/${path.split('/').pop()}`);
  }
  return out;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The lines worth showing: no stack frames, no blank or duplicate lines, no CLI chatter. */
function cleanLines(lines: readonly string[], scrub: (s: string) => string): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const raw of lines) {
    const line = scrub(stripAnsi(raw)).trimEnd();
    if (!line.trim() || /^\s+at\s/.test(line) || /^(Error: )?Command failed: /.test(line.trim())) continue;
    if (seen.has(line.trim())) continue;
    seen.add(line.trim());
    out.push(line);
  }
  return out.slice(-DETAIL_LINES);
}

const UNREACHABLE = /\b(ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ETIMEDOUT|ECONNRESET|EHOSTUNREACH|ENETUNREACH)\b|socket hang up|certificate/i;

function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}

/** A feature the CLI was fetching when it failed: `feature X could not be downloaded: …`. */
function featureFailure(lines: readonly string[]): SandboxFailure | null {
  const manifest = [...lines].reverse().find((l) => l.startsWith('manifest url: '));
  const processing = [...lines].reverse().find((l) => /^\* Processing feature: /.test(l));
  const feature = processing?.replace(/^\* Processing feature: /, '').trim();
  const error = [...lines].reverse().find((l) => /^Error: /.test(l.trim()))?.trim() ?? '';
  if (!feature) return null;
  if (feature.startsWith('.') && /ENOENT/.test(error)) {
    return { code: 'config_invalid', message: `local feature ${feature} has no devcontainer-feature.json in the repository` };
  }
  if (!manifest && !/Could not resolve Feature|Failed to (fetch|download)/i.test(lines.join('\n'))) return null;
  const host = manifest ? hostOf(manifest.replace('manifest url: ', '')) : 'its registry';
  const why = UNREACHABLE.test(error)
    ? `${host} is unreachable from the server`
    : /\b(401|403|unauthorized|denied)\b/i.test(error)
      ? `${host} refused the server's request (a private feature needs registry credentials on the server)`
      : /\b404\b|manifest unknown|not found/i.test(error)
        ? `it does not exist on ${host}`
        : `${host} did not serve it`;
  return { code: 'feature_unavailable', message: `feature ${feature} could not be downloaded: ${why}` };
}

/** An image the CLI could neither find on the server nor pull. */
function imageFailure(lines: readonly string[]): SandboxFailure | null {
  const pull = [...lines].reverse().map((l) => /Command failed: docker pull (\S+)/.exec(l)).find(Boolean);
  if (!pull) return null;
  return {
    code: 'image_unavailable',
    message: `image ${pull[1]} is not available on the server and cannot be pulled; use an image the server has, or let its administrator pull it`,
  };
}

/** A Dockerfile step that failed: the step and its exit code, from the classic or the BuildKit builder. */
function buildStep(lines: readonly string[]): string | null {
  for (const line of [...lines].reverse()) {
    const classic = /The command '\/bin\/sh -c (.*)' returned a non-zero code: (\d+)/.exec(line);
    if (classic) return `RUN ${classic[1]} exited with code ${classic[2]}`;
    const buildkit = /process "\/bin\/sh -c (.*)" did not complete successfully: exit code: (\d+)/.exec(line);
    if (buildkit) return `RUN ${buildkit[1]} exited with code ${buildkit[2]}`;
  }
  return null;
}

/** The failure of `devcontainerUp`, as the user sees it. `logLines`: the CLI's recent log lines. */
export function describeFailure(err: DevcontainerError, logLines: readonly string[], workspaceFolder: string, serverRoots: readonly string[]): SandboxFailure {
  const scrub = (text: string) => scrubPaths(text, workspaceFolder, serverRoots);
  const lines = logLines.map((l) => stripAnsi(l));
  const withDetail = (failure: SandboxFailure, detail: readonly string[]): SandboxFailure => {
    const shown = cleanLines(detail, scrub).filter((l) => l.trim() !== failure.message);
    return { code: failure.code, message: scrub(failure.message) + (shown.length ? `\n${shown.map((l) => `  ${l.trim()}`).join('\n')}` : '') };
  };
  switch (err.kind) {
    case 'timeout':
      return { code: 'sandbox_timeout', message: scrub(err.message.replace(/^devcontainer up timed out/, 'the dev container did not start in time: gave up')) };
    case 'refused':
      return { code: 'config_unsupported', message: scrub(err.message.replace(/^invalid dev container config: /, '')) };
    case 'config': {
      const specific = imageFailure(lines) ?? featureFailure(lines);
      if (specific) return { code: specific.code, message: scrub(specific.message) };
      return withDetail({ code: 'config_invalid', message: err.message.replace(/^invalid dev container config: /, 'the dev container config is not valid: ') }, err.outputTail.filter((l) => /error/i.test(l)));
    }
    case 'failed': {
      const lifecycle = err.lifecycleFailure;
      if (lifecycle) {
        const code = /exit code (\d+)/.exec(lines.concat(err.outputTail).join('\n'))?.[1];
        const command = lifecycle.command ? `: ${lifecycle.command}` : '';
        const output = lifecycle.outputTail.filter((l) => !/Skipping any further user-provided commands/.test(l));
        return withDetail({ code: 'lifecycle_failed', message: `${lifecycle.hook} failed${code ? ` with exit code ${code}` : ''}${command}` }, output);
      }
      const specific = imageFailure(lines) ?? featureFailure(lines);
      if (specific) return { code: specific.code, message: scrub(specific.message) };
      if (/building the image/i.test(err.description ?? '')) {
        const step = buildStep(lines.concat(err.outputTail));
        // The failing step's own output; the builder's chatter and the step list stay in the log.
        const chatter = /^\s*(Step \d+\/\d+ :|--->|Sending build context|Install the buildx|https:\/\/docs\.docker\.com|DEPRECATED|The command '\/bin\/sh|#\d+ \[)/;
        return withDetail({ code: 'sandbox_failed', message: `the dev container image could not be built${step ? `: ${step}` : ''}` }, err.outputTail.filter((l) => !chatter.test(l)));
      }
      return withDetail({ code: 'sandbox_failed', message: err.description ?? err.message }, err.outputTail);
    }
    default:
      return withDetail({ code: 'sandbox_failed', message: err.message }, err.outputTail);
  }
}
