// Whether a failure needs a git credential: a clone or push that an https/http remote refused
// without one (or with a wrong one). No vscode import: tested in plain node on what git and the server really say.
import { credentialHostFromRemote } from './hosts';

/** git's words when a remote wants a user name and password it did not get, or refused the ones it got. */
const AUTH_REFUSED = [
  /could not read (Username|Password) for/i,
  /terminal prompts disabled/i,
  /Authentication failed for/i,
  /HTTP Basic: Access denied/i,
  /Invalid username or (password|token)/i,
  /The requested URL returned error: (401|403)\b/i,
  // GitHub and others answer "not found" to a credential that cannot see a private repository.
  /repository '[^']*' not found/i,
];

export interface CredentialNeeded {
  /** The host to store a credential for (`host[:port]`, as the server looks it up). */
  host: string;
}

/**
 * The host to add (or replace) a credential for, when this failure is git being refused by the
 * repository's https/http remote: a preparation failed at its clone step, or a push failed.
 */
export function credentialNeeded(repoUrl: string | null | undefined, failure: { message: string; step?: string } | null | undefined): CredentialNeeded | null {
  if (!repoUrl || !failure) return null;
  if (failure.step !== undefined && failure.step !== 'clone') return null;
  if (!AUTH_REFUSED.some((pattern) => pattern.test(failure.message))) return null;
  const host = credentialHostFromRemote(repoUrl);
  return host ? { host } : null;
}
