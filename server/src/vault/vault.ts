// Per-user git credentials and secrets, sealed at rest (cipher.ts) and opened only where they are
// used: git on the host (credentials), setup and lifecycle commands (setup secrets), the agent's
// tools (agent secrets). Every value is known to the redactor from the moment it is stored or
// opened, so no log, event or error shows it.
import type { CredentialView, SecretExposure, SecretView } from '@berth/protocol';
import type { CredentialRecord, SecretRecord, SessionRecord, Store } from '../store/store';
import { ApiError } from '@berth/protocol';
import type { Redactor } from '@berth/protocol';
import { SecretCipher } from './cipher';
import { SecretKeyError, type KeySource } from './key';

export interface GitCredential {
  username: string;
  token: string;
}

/** What a session's processes get: setup (and lifecycle) commands all secrets, the agent only its own. */
export interface SessionSecrets {
  setup: Record<string, string>;
  agent: Record<string, string>;
}

const DEFAULT_USERNAME = 'x-access-token';
const KEY_CHECK = 'berth: the secret key that sealed this store';

const credentialContext = (owner: string, host: string) => `credential\0${owner}\0${host}`;
const secretContext = (owner: string, name: string, repo: string) => `secret\0${owner}\0${name}\0${repo}`;
const urlCredentialContext = (sessionId: string) => `session-url\0${sessionId}`;

/** A repository URL as secrets are scoped to it: no credentials, host in lower case, no `.git` or `/` at the end. */
export function normalizeRepoUrl(url: string): string {
  const bare = splitUrlCredential(url).url.trim().replace(/\/+$/, '').replace(/\.git$/, '');
  return bare.replace(/^([a-z][a-z0-9+.-]*:\/\/)([^/]+)/i, (_m, scheme: string, host: string) => `${scheme.toLowerCase()}${host.toLowerCase()}`);
}

/** `host[:port]` of an http(s) URL, lower case; null for other URLs. */
export function hostOf(url: string): string | null {
  const match = /^https?:\/\/(?:[^@/]*@)?([^/?#]+)/i.exec(url.trim());
  return match ? match[1]!.toLowerCase() : null;
}

/**
 * Takes credentials out of an http(s) URL: `https://user:token@host/…` (or `https://token@host/…`,
 * a token of 20 characters or more standing alone, as GitHub accepts). The URL without them is the
 * one stored and given to git; the credential is used for that session only.
 */
export function splitUrlCredential(url: string): { url: string; credential: GitCredential | null } {
  const match = /^(https?:\/\/)([^@/]+)@(.*)$/i.exec(url.trim());
  if (!match) return { url, credential: null };
  const [, scheme, userinfo, rest] = match as unknown as [string, string, string, string];
  const colon = userinfo.indexOf(':');
  const decode = (s: string) => {
    try {
      return decodeURIComponent(s);
    } catch {
      return s;
    }
  };
  if (colon >= 0) {
    const token = decode(userinfo.slice(colon + 1));
    if (token) return { url: `${scheme}${rest}`, credential: { username: decode(userinfo.slice(0, colon)) || DEFAULT_USERNAME, token } };
    return { url: `${scheme}${rest}`, credential: null };
  }
  // A bare user name is no credential; a long token in its place is (GitHub's `https://<token>@…`).
  if (userinfo.length >= 20) return { url: `${scheme}${rest}`, credential: { username: DEFAULT_USERNAME, token: decode(userinfo) } };
  return { url, credential: null };
}

export class Vault {
  private constructor(
    private readonly store: Store,
    private readonly cipher: SecretCipher,
    private readonly redactor: Redactor,
  ) {}

  /**
   * Opens the vault with the server's key: refused (a SecretKeyError naming the key, never showing
   * it) when the store was sealed with another key. Every stored value is registered with the redactor.
   */
  static async open(store: Store, source: KeySource, redactor: Redactor): Promise<Vault> {
    const cipher = new SecretCipher(source.key);
    const check = await store.settingOnce('secret_key_check', cipher.encrypt(KEY_CHECK, 'key-check'));
    let opened = '';
    try {
      opened = cipher.decrypt(check, 'key-check');
    } catch {
      // reported below
    }
    if (opened !== KEY_CHECK) {
      throw new SecretKeyError(`${source.name} cannot open the credentials and secrets already stored: it is not the key they were stored with`);
    }
    const vault = new Vault(store, cipher, redactor);
    for (const c of await store.listCredentials()) vault.reveal(() => cipher.decrypt(c.token, credentialContext(c.owner, c.host)));
    for (const s of await store.listSecrets()) vault.reveal(() => cipher.decrypt(s.value, secretContext(s.owner, s.name, s.repo)));
    return vault;
  }

  /** Opens a value for the redactor; an unreadable row (damaged) is left out, never fatal. */
  private reveal(open: () => string): void {
    try {
      this.redactor.add(open());
    } catch {
      /* a damaged row cannot leak either */
    }
  }

  // ---- credentials ----

  async putCredential(owner: string, host: string, username: string | undefined, token: string): Promise<CredentialView> {
    this.redactor.add(token);
    const now = new Date().toISOString();
    const stored = await this.store.putCredential({
      owner,
      host,
      username: username ?? DEFAULT_USERNAME,
      token: this.cipher.encrypt(token, credentialContext(owner, host)),
      createdAt: now,
      updatedAt: now,
    });
    return credentialView(stored);
  }

  async listCredentials(owner: string): Promise<CredentialView[]> {
    return (await this.store.listCredentials(owner)).map(credentialView);
  }

  async deleteCredential(owner: string, host: string): Promise<void> {
    if (!(await this.store.deleteCredential(owner, host))) throw new ApiError(404, 'not_found', `no credential for ${host}`);
  }

  /** Seals the credential a start's URL carried, for that session alone. */
  sealUrlCredential(sessionId: string, credential: GitCredential): string {
    this.redactor.add(credential.token);
    return this.cipher.encrypt(JSON.stringify(credential), urlCredentialContext(sessionId));
  }

  /**
   * The credential git uses for a session's remote: the one its URL carried, else its owner's for
   * that host (http and https remotes only), else none.
   */
  async gitCredential(session: Pick<SessionRecord, 'id' | 'owner' | 'repoUrl' | 'urlCredential'>): Promise<GitCredential | null> {
    if (session.urlCredential) {
      const credential = JSON.parse(this.cipher.decrypt(session.urlCredential, urlCredentialContext(session.id))) as GitCredential;
      this.redactor.add(credential.token);
      return credential;
    }
    const inUrl = splitUrlCredential(session.repoUrl).credential; // a session stored before credentials left URLs
    if (inUrl) return inUrl;
    const host = hostOf(session.repoUrl);
    const stored = host ? await this.store.getCredential(session.owner, host) : null;
    if (!stored) return null;
    const token = this.cipher.decrypt(stored.token, credentialContext(stored.owner, stored.host));
    this.redactor.add(token);
    return { username: stored.username, token };
  }

  // ---- secrets ----

  async putSecret(owner: string, name: string, value: string, repo: string | undefined, exposeTo: SecretExposure): Promise<SecretView> {
    this.redactor.add(value);
    const scope = repo ? normalizeRepoUrl(repo) : '';
    const now = new Date().toISOString();
    const stored = await this.store.putSecret({
      owner,
      name,
      repo: scope,
      value: this.cipher.encrypt(value, secretContext(owner, name, scope)),
      exposeTo,
      createdAt: now,
      updatedAt: now,
    });
    return secretView(stored);
  }

  async listSecrets(owner: string): Promise<SecretView[]> {
    return (await this.store.listSecrets(owner)).map(secretView);
  }

  async deleteSecret(owner: string, name: string, repo: string | undefined): Promise<void> {
    const scope = repo ? normalizeRepoUrl(repo) : '';
    if (!(await this.store.deleteSecret(owner, name, scope))) throw new ApiError(404, 'not_found', `no secret ${name}${repo ? ` for ${scope}` : ''}`);
  }

  /** The secrets of a session: its owner's, for every repository or for this one (which wins). */
  async secretsFor(session: Pick<SessionRecord, 'owner' | 'repoUrl'>): Promise<SessionSecrets> {
    const repo = normalizeRepoUrl(session.repoUrl);
    const applicable = (await this.store.listSecrets(session.owner)).filter((s) => s.repo === '' || s.repo === repo);
    // The repository's own secret of a name wins over the one for all repositories.
    applicable.sort((a, b) => Number(a.repo !== '') - Number(b.repo !== ''));
    const out: SessionSecrets = { setup: {}, agent: {} };
    for (const secret of applicable) {
      const value = this.cipher.decrypt(secret.value, secretContext(secret.owner, secret.name, secret.repo));
      this.redactor.add(value);
      out.setup[secret.name] = value;
      if (secret.exposeTo === 'agent') out.agent[secret.name] = value;
      else delete out.agent[secret.name];
    }
    return out;
  }
}

function credentialView(c: CredentialRecord): CredentialView {
  return { host: c.host, username: c.username, createdAt: c.createdAt, updatedAt: c.updatedAt };
}

function secretView(s: SecretRecord): SecretView {
  return { name: s.name, repo: s.repo || null, exposeTo: s.exposeTo, createdAt: s.createdAt, updatedAt: s.updatedAt };
}
