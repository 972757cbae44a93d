import { z } from 'zod';

/**
 * What `berth-server serve --announce json` prints on stdout, one JSON object per line, for the
 * program that started it (the extension's embedded server): no regex over prose meant for people.
 */
export const ServerAnnouncement = z.discriminatedUnion('type', [
  z.object({ type: z.literal('listening'), url: z.string().url(), pid: z.number().int().positive() }),
  /** Another live server holds the data directory's lock (its pid); this one exits with `dataDirInUse`. */
  z.object({ type: z.literal('data_dir_in_use'), pid: z.number().int().positive() }),
]);
export type ServerAnnouncement = z.infer<typeof ServerAnnouncement>;

/** The server's exit codes that a launcher acts on (EX_USAGE-like 2, EX_TEMPFAIL 75). */
export const SERVER_EXIT_CODES = { failed: 1, usage: 2, dataDirInUse: 75 } as const;

/** One stdout line as an announcement, or null for anything else (human-readable lines, logs). */
export function parseAnnouncement(line: string): ServerAnnouncement | null {
  const text = line.trim();
  if (!text.startsWith('{')) return null;
  try {
    const parsed = ServerAnnouncement.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}
