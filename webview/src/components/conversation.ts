// The conversation: user messages, streamed assistant text (sanitised markdown), folded tool calls,
// turn status and errors. Items are keyed so that a streamed delta re-renders only its own block.
import type { ChatItem } from '@berth/protocol';
import { formatElapsed, formatTokens } from '../format';
import { StreamedMarkdown } from './streamedMarkdown';
import { renderChangesCard, type ChangesActions } from './changes';
import { h } from './dom';

export class Conversation {
  readonly element = h('div', { class: 'conversation', attrs: { role: 'log', 'aria-live': 'polite', 'aria-label': 'Conversation' } });
  private readonly rendered = new Map<string, { item: ChatItem; node: HTMLElement; markdown?: StreamedMarkdown }>();

  constructor(private readonly actions: ChangesActions) {}

  update(items: ChatItem[]): void {
    const keep = new Set(items.map((i) => i.key));
    for (const [key, entry] of this.rendered) {
      if (!keep.has(key)) {
        entry.node.remove();
        this.rendered.delete(key);
      }
    }
    let previous: HTMLElement | null = null;
    for (const item of items) {
      const entry = this.rendered.get(item.key);
      let node: HTMLElement;
      if (entry && sameItem(entry.item, item)) {
        node = entry.node;
      } else if (entry?.markdown && item.kind === 'assistant' && entry.item.kind === 'assistant') {
        // A streamed answer grew: only its open last block is rendered again.
        entry.markdown.update(item.text);
        entry.item = item;
        node = entry.node;
      } else if (item.kind === 'assistant') {
        const body = h('div', { class: 'markdown' });
        const markdown = new StreamedMarkdown(body);
        markdown.update(item.text);
        node = h('div', { class: 'msg msg--assistant' }, h('div', { class: 'msg-role', text: 'Agent' }), body);
        if (entry) entry.node.replaceWith(node);
        this.rendered.set(item.key, { item, node, markdown });
      } else {
        node = renderItem(item, entry?.node, this.actions);
        if (entry && entry.node !== node) entry.node.replaceWith(node);
        this.rendered.set(item.key, { item, node });
      }
      const expectedPosition: ChildNode | null = previous ? previous.nextSibling : this.element.firstChild;
      if (expectedPosition !== node) this.element.insertBefore(node, expectedPosition);
      previous = node;
    }
  }
}

function sameItem(a: ChatItem, b: ChatItem): boolean {
  if (a === b) return true;
  // An answer's text is compared as text (a streamed one is long); other items are small.
  if (a.kind === 'assistant' && b.kind === 'assistant') return a.turnId === b.turnId && a.text === b.text;
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Every item but an answer (see StreamedMarkdown). */
function renderItem(item: Exclude<ChatItem, { kind: 'assistant' }>, previous: HTMLElement | undefined, actions: ChangesActions): HTMLElement {
  switch (item.kind) {
    case 'user':
      return h('div', { class: 'msg msg--user' }, h('div', { class: 'msg-role', text: 'You' }), h('div', { class: 'msg-text', text: item.text }));
    case 'tool': {
      const status = item.result === null ? 'running…' : item.result.ok ? 'done' : 'failed';
      const details = h(
        'details',
        { class: `tool tool--${item.result === null ? 'running' : item.result.ok ? 'ok' : 'failed'}` },
        h('summary', {}, h('span', { class: 'tool-name', text: item.name }), h('span', { class: 'tool-status', text: ` — ${status}` })),
        item.args && h('div', { class: 'tool-label', text: 'Arguments' }),
        item.args && h('pre', { class: 'tool-args', text: item.args }),
        item.result && h('div', { class: 'tool-label', text: 'Result' }),
        item.result && h('pre', { class: 'tool-output', text: item.result.output }),
      );
      // Keep a tool call unfolded if the user opened it before its result arrived.
      if (previous instanceof HTMLDetailsElement && previous.open) details.open = true;
      return details;
    }
    case 'turn': {
      const text =
        item.status === 'completed'
          ? `Turn completed in ${formatElapsed(item.durationMs)}`
          : item.status === 'interrupted'
            ? `Turn interrupted after ${formatElapsed(item.durationMs)}`
            : `Turn failed after ${formatElapsed(item.durationMs)}`;
      return h('div', { class: `turn turn--${item.status}`, text: item.usage ? `${text} · ${formatTokens(item.usage)}` : text });
    }
    case 'error':
      return h(
        'div',
        { class: 'msg msg--error', attrs: { role: 'alert' } },
        h('div', { class: 'msg-role', text: 'Error' }),
        h('div', { class: 'msg-text', text: item.message }),
        h('div', { class: 'msg-meta', text: item.code }),
      );
    case 'changes':
      return renderChangesCard(item, actions);
  }
}
