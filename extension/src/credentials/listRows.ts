// The rows of the Git Credentials and Manage Secrets quick picks, built from the server's lists.
// Plain data (labels with codicons, descriptions, details): the commands turn them into quick pick
// items, and the tests read them in plain node. No row ever holds a token or a secret's value.
import type { CredentialView, SecretExposure, SecretView } from '@berth/protocol';
import { sameRepository } from '../changes/repoUrl';
import { GITHUB_HOST } from './hosts';

export interface Separator {
  kind: 'separator';
  label: string;
}

export interface Row<T> {
  kind: 'row';
  label: string;
  description?: string;
  detail?: string;
  value: T;
}

export type ListEntry<T> = Row<T> | Separator;

export type CredentialChoice = { action: 'add' } | { action: 'connectGitHub' } | { action: 'open'; credential: CredentialView };
export type SecretChoice = { action: 'add' } | { action: 'open'; secret: SecretView };

/** The one-line explanation of each exposure, as the add flow offers it and the list shows it. */
export const EXPOSURES: Record<SecretExposure, { label: string; explanation: string; short: string }> = {
  setup: { label: 'setup', explanation: 'setup and lifecycle commands only, never the agent', short: 'never the agent' },
  agent: { label: 'agent', explanation: "also the agent's tools: the model can read it", short: 'the model can read it' },
};

/** "just now", "5 minutes ago", "yesterday", "12 days ago", then the date. */
export function relativeTime(iso: string, now: Date): string {
  const then = new Date(iso);
  if (Number.isNaN(then.getTime())) return iso;
  const seconds = Math.max(0, Math.round((now.getTime() - then.getTime()) / 1000));
  const plural = (n: number, unit: string) => `${n} ${unit}${n === 1 ? '' : 's'} ago`;
  if (seconds < 45) return 'just now';
  if (seconds < 3600) return plural(Math.max(1, Math.round(seconds / 60)), 'minute');
  if (seconds < 86_400) return plural(Math.round(seconds / 3600), 'hour');
  const days = Math.round(seconds / 86_400);
  if (days === 1) return 'yesterday';
  if (days < 30) return `${days} days ago`;
  return then.toISOString().slice(0, 10);
}

function changedText(view: { createdAt: string; updatedAt: string }, now: Date): string {
  return view.updatedAt !== view.createdAt ? `replaced ${relativeTime(view.updatedAt, now)}` : `added ${relativeTime(view.createdAt, now)}`;
}

/** Add and Connect GitHub first, then one row per stored credential (host, user name, when). */
export function credentialEntries(credentials: CredentialView[], now: Date, workspaceHost: string | null = null): ListEntry<CredentialChoice>[] {
  const entries: ListEntry<CredentialChoice>[] = [
    { kind: 'row', label: '$(add) Add Git Credential…', detail: 'A host, a user name and an access token (a personal access token, an app password…)', value: { action: 'add' } },
  ];
  const github = credentials.find((c) => c.host === GITHUB_HOST);
  entries.push({
    kind: 'row',
    label: '$(github) Connect GitHub…',
    detail: github ? 'Replace the github.com credential with the token of your GitHub sign-in in VS Code' : 'Use your GitHub sign-in in VS Code for github.com',
    value: { action: 'connectGitHub' },
  });
  if (credentials.length === 0) return entries;
  entries.push({ kind: 'separator', label: 'Stored on the Berth server' });
  for (const credential of [...credentials].sort((a, b) => a.host.localeCompare(b.host))) {
    const here = workspaceHost === credential.host ? " · the workspace's remote" : '';
    entries.push({
      kind: 'row',
      label: `$(key) ${credential.host}`,
      description: `${credential.username}${here}`,
      detail: `${changedText(credential, now)} · clones, fetches and pushes https repositories on ${credential.host}`,
      value: { action: 'open', credential },
    });
  }
  return entries;
}

/** Where a secret applies, in words. */
export function secretScopeText(repo: string | null): string {
  return repo === null ? 'all of your sessions' : `only sessions of ${repo}`;
}

/**
 * Add first, then the secrets grouped by where they apply: all sessions, the workspace's
 * repository, other repositories; by name within a group.
 */
export function secretEntries(secrets: SecretView[], now: Date, workspaceRepo: string | null = null): ListEntry<SecretChoice>[] {
  const entries: ListEntry<SecretChoice>[] = [
    { kind: 'row', label: '$(add) Add Secret…', detail: 'An environment variable for setup commands, or also for the agent', value: { action: 'add' } },
  ];
  const isHere = (s: SecretView) => s.repo !== null && workspaceRepo !== null && sameRepository(s.repo, workspaceRepo);
  const groups: [string, SecretView[]][] = [
    ['All of your sessions', secrets.filter((s) => s.repo === null)],
    ['This repository', secrets.filter(isHere)],
    ['Other repositories', secrets.filter((s) => s.repo !== null && !isHere(s))],
  ];
  for (const [label, group] of groups) {
    if (group.length === 0) continue;
    entries.push({ kind: 'separator', label });
    const sorted = [...group].sort((a, b) => a.name.localeCompare(b.name) || (a.repo ?? '').localeCompare(b.repo ?? ''));
    for (const secret of sorted) {
      const exposure = EXPOSURES[secret.exposeTo];
      entries.push({
        kind: 'row',
        label: `$(${secret.exposeTo === 'agent' ? 'eye' : 'lock'}) ${secret.name}`,
        description: `${exposure.label}: ${exposure.short}`,
        detail: `${secretScopeText(secret.repo)} · ${changedText(secret, now)}`,
        value: { action: 'open', secret },
      });
    }
  }
  return entries;
}

/**
 * The stored secret that a new one of this name and scope would replace, if any. The server keeps
 * a scope in its own spelling (no credentials, no `.git`), so repositories compare as repositories.
 */
export function existingSecret(secrets: SecretView[], name: string, repo: string | null): SecretView | undefined {
  return secrets.find((s) => s.name === name && (s.repo === null || repo === null ? s.repo === repo : sameRepository(s.repo, repo)));
}
