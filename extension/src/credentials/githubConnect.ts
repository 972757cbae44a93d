// Berth: Connect GitHub, without vscode: the GitHub sign-in (VS Code's authentication provider) is
// passed in, so the outcomes — connected, cancelled, no provider, refused — are tested in plain node.
import type { CredentialView, PutCredentialRequest } from '@berth/protocol';
import { Redactor } from '@berth/protocol';
import { errorMessage } from '../logger';
import { DEFAULT_USERNAME, GITHUB_HOST } from './hosts';
import { tokenProblem } from './validation';

/** The parts of a `vscode.AuthenticationSession` used here. */
export interface GitHubSession {
  accessToken: string;
  account: { label: string };
}

export interface ConnectGitHubDeps {
  /** `vscode.authentication.getSession('github', ['repo'], { createIfNone: true })`. */
  getSession(): Promise<GitHubSession | undefined>;
  api: {
    listCredentials(): Promise<CredentialView[]>;
    putCredential(host: string, request: PutCredentialRequest): Promise<CredentialView>;
  };
  /** Called with the token before it goes anywhere (the logger's redaction set). */
  protect(secret: string): void;
}

export type ConnectGitHubOutcome =
  | { kind: 'connected'; account: string; credential: CredentialView; replaced: CredentialView | null }
  | { kind: 'cancelled' }
  /** This editor has no GitHub sign-in (code-server, VSCodium without it…). */
  | { kind: 'unavailable'; reason: string }
  | { kind: 'failed'; message: string };

export async function connectGitHub(deps: ConnectGitHubDeps): Promise<ConnectGitHubOutcome> {
  let session: GitHubSession | undefined;
  try {
    session = await deps.getSession();
  } catch (err) {
    return isCancellation(err) ? { kind: 'cancelled' } : { kind: 'unavailable', reason: errorMessage(err) };
  }
  if (!session) return { kind: 'cancelled' };
  const token = session.accessToken;
  deps.protect(token);
  const account = session.account.label;
  if (tokenProblem(token)) return { kind: 'failed', message: `the GitHub sign-in of ${account} gave no usable token; sign out of GitHub in VS Code (Accounts menu) and connect again` };
  try {
    const replaced = (await deps.api.listCredentials()).find((c) => c.host === GITHUB_HOST) ?? null;
    const credential = await deps.api.putCredential(GITHUB_HOST, { username: DEFAULT_USERNAME, token });
    return { kind: 'connected', account, credential, replaced };
  } catch (err) {
    return { kind: 'failed', message: `signed in to GitHub as ${account}, but the Berth server did not store the token: ${new Redactor([token]).redact(errorMessage(err))}` };
  }
}

/**
 * The user closed the sign-in or refused consent: VS Code rejects with a `CancellationError`
 * ("Canceled") or, in older versions, "User did not consent to login.".
 */
export function isCancellation(err: unknown): boolean {
  const name = err instanceof Error ? err.name : '';
  return name === 'Canceled' || name === 'CancellationError' || /did not consent|cancel/i.test(errorMessage(err));
}
