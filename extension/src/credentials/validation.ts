// What is wrong with a host, user name, token, secret name or secret value, in words a person reads
// under an input box. The protocol's schemas have the last word, so the UI and the server agree.
import { CredentialHost, MIN_SECRET_LENGTH, PutCredentialRequest, PutSecretRequest, SecretName } from '@berth/protocol';
import { normalizeHostInput } from './hosts';

/** An input box message: an error blocks Enter, a warning does not. */
export interface InputProblem {
  message: string;
  severity: 'error' | 'warning';
}

const error = (message: string): InputProblem => ({ message, severity: 'error' });

export function hostProblem(text: string): InputProblem | undefined {
  const host = normalizeHostInput(text);
  if (!host) return error('Enter the host of the repositories, as in their https URL: e.g. github.com or git.example.com:8443.');
  const port = /:(\d+)$/.exec(host)?.[1];
  if (!CredentialHost.safeParse(host).success || (port !== undefined && (Number(port) < 1 || Number(port) > 65_535))) {
    return error(`"${host}" is not a host: use host or host:port as in the repository's https URL, e.g. github.com.`);
  }
  return undefined;
}

/** Empty is fine: the server then uses x-access-token. */
export function usernameProblem(text: string): InputProblem | undefined {
  const name = text.trim();
  if (!name) return undefined;
  if (name.length > 256) return error('A user name has at most 256 characters.');
  if (!PutCredentialRequest.shape.username.safeParse(name).success) return error('A user name has no spaces and no ":".');
  return undefined;
}

/** The token as it will be sent: what was typed or pasted, without surrounding blanks. */
export function cleanToken(text: string): string {
  return text.trim();
}

export function tokenProblem(text: string): InputProblem | undefined {
  const token = cleanToken(text);
  if (!token) return error('Paste the access token (it is not shown).');
  if (/\s/.test(token)) return error('A token has no spaces or line breaks: paste the token alone.');
  if (token.length < MIN_SECRET_LENGTH) return error(tooShort('token', token.length));
  if (token.length > 4096) return error('A token has at most 4096 characters.');
  const parsed = PutCredentialRequest.shape.token.safeParse(token);
  return parsed.success ? undefined : error(parsed.error.issues[0]?.message ?? 'not a token');
}

export function secretNameProblem(text: string): InputProblem | undefined {
  const name = text.trim();
  if (!name) return error('Enter a name, e.g. NPM_TOKEN: sessions get the secret as this environment variable.');
  if (name.length > 128) return error('A name has at most 128 characters.');
  if (!SecretName.safeParse(name).success) {
    return error(`"${name}" is not an environment variable name: letters, digits and _, not starting with a digit (e.g. NPM_TOKEN).`);
  }
  return undefined;
}

/** A secret is kept exactly as typed; blanks around it are allowed but worth a second look. */
export function secretValueProblem(value: string): InputProblem | undefined {
  if (!value) return error('Type or paste the value (it is not shown).');
  if (value.length < MIN_SECRET_LENGTH) return error(tooShort('secret', value.length));
  const parsed = PutSecretRequest.shape.value.safeParse(value);
  if (!parsed.success) return error(value.length > 65_536 ? 'A secret has at most 65,536 characters.' : (parsed.error.issues[0]?.message ?? 'not a valid value'));
  if (value !== value.trim()) return { message: 'The value starts or ends with a blank, which is kept as part of it.', severity: 'warning' };
  return undefined;
}

/** Why short values are refused: every stored value is blanked out of logs and output, and a short one would blank ordinary text. */
function tooShort(what: 'token' | 'secret', length: number): string {
  return `A ${what} has at least ${MIN_SECRET_LENGTH} characters (this one has ${length}): Berth blanks every ${what} out of logs and output, and a short one would blank ordinary text.`;
}
