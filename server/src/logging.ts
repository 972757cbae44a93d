import pino, { type Logger } from 'pino';
import { REDACTED, type Redactor } from '@berth/protocol';

/**
 * The server's logger: JSON lines on stderr. Header and token fields are censored by path, and
 * every message string goes through the redactor, so no token or key reaches a log line.
 */
export function createLogger(level: string, redactor: Redactor): Logger {
  return pino(
    {
      level,
      base: undefined,
      redact: {
        paths: ['authorization', 'token', 'ticket', 'apiKey', '*.authorization', '*.token', '*.ticket', '*.apiKey', 'headers.authorization'],
        censor: REDACTED,
      },
      hooks: {
        logMethod(args, method) {
          method.apply(
            this,
            args.map((a) => (typeof a === 'string' ? redactor.redact(a) : a)) as Parameters<typeof method>,
          );
        },
      },
      serializers: {
        err: (err: Error) => ({ type: err.name, message: redactor.redact(err.message), stack: redactor.redact(err.stack ?? '') }),
      },
    },
    pino.destination({ fd: 2, sync: false }),
  );
}
