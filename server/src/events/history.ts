import type { PersistedEvent } from '@berth/protocol';
import type { Store } from '../store/store';

export const HISTORY_PAGE = 1000;

/**
 * Every persisted event of a session after `afterId`, read a page at a time: a long history is
 * neither held in one query nor cut at some limit.
 */
export async function* eventHistory(store: Store, sessionId: string, afterId = 0, pageSize = HISTORY_PAGE): AsyncGenerator<PersistedEvent> {
  let cursor = afterId;
  for (;;) {
    const page = await store.readEvents(sessionId, cursor, pageSize);
    yield* page;
    if (page.length < pageSize) return;
    cursor = page[page.length - 1]!.id;
  }
}
