import type { ChatItem, ChatViewPatch, ChatViewState, ItemsPatch } from './webview';

/**
 * The change from `before` to `after` (items compared by identity: the host's state machine makes
 * a new item for every change and keeps the others): O(items) pointer comparisons, and a payload
 * the size of what changed.
 */
export function diffItems(before: readonly ChatItem[], after: readonly ChatItem[]): ItemsPatch {
  let keep = 0;
  while (keep < before.length && keep < after.length && before[keep] === after[keep]) keep++;
  const old = before[keep];
  const now = after[keep];
  if (
    old &&
    now &&
    old.key === now.key &&
    old.kind === 'assistant' &&
    now.kind === 'assistant' &&
    old.turnId === now.turnId &&
    now.text.length >= old.text.length &&
    now.text.startsWith(old.text)
  ) {
    return { keep, append: { key: now.key, text: now.text.slice(old.text.length) }, items: after.slice(keep + 1) };
  }
  return { keep, append: null, items: after.slice(keep) };
}

/** The items after `patch`, or null when it does not fit `before` (then the whole state is needed). */
export function applyItemsPatch(before: readonly ChatItem[], patch: ItemsPatch): ChatItem[] | null {
  if (patch.keep > before.length) return null;
  const items = before.slice(0, patch.keep);
  if (patch.append) {
    const old = before[patch.keep];
    if (!old || old.kind !== 'assistant' || old.key !== patch.append.key) return null;
    items.push({ ...old, text: old.text + patch.append.text });
  }
  items.push(...patch.items);
  return items;
}

/** The patch that turns `before` (what the webview has) into `after`. */
export function diffView(before: ChatViewState, after: ChatViewState): ChatViewPatch {
  const session = after.session && { ...after.session, items: diffItems(before.session?.items ?? [], after.session.items) };
  return { ...after, base: before.revision, session };
}

/** The state after `patch`, or null when it was made against another revision or session. */
export function applyViewPatch(before: ChatViewState, patch: ChatViewPatch): ChatViewState | null {
  if (patch.base !== before.revision) return null;
  const { base: _base, ...rest } = patch;
  if (!patch.session) return { ...rest, session: null };
  if (!before.session || before.session.sessionId !== patch.session.sessionId) return null;
  const items = applyItemsPatch(before.session.items, patch.session.items);
  return items && { ...rest, session: { ...patch.session, items } };
}
