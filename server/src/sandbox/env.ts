/**
 * The environment a sandboxed process gets: a short allowlist of the server's variables (never
 * its tokens or keys) plus the session's own.
 */
const PASSED_THROUGH = ['PATH', 'HOME', 'USER', 'LOGNAME', 'LANG', 'LC_ALL', 'TERM', 'TZ', 'SHELL', 'TMPDIR'];

export const SANDBOX_SESSION_VAR = 'BERTH_SESSION_ID';
export const SANDBOX_OWNER_VAR = 'BERTH_SANDBOX_OWNER';

export function sandboxEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const name of PASSED_THROUGH) {
    const value = process.env[name];
    if (value !== undefined) env[name] = value;
  }
  return { ...env, ...extra };
}
