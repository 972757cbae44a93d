// A streamed answer's markdown, rendered a block at a time: blocks that are finished (followed by a
// blank line outside a code fence) are rendered once and kept; only the open last block is rendered
// again when a chunk arrives. A chunk costs the size of that block, not of the whole answer.
import { renderMarkdown } from '../markdown';

const FENCE = /^ {0,3}(`{3,}|~{3,})/;

/**
 * Where the finished blocks of `text` end: just after its last blank line that is outside a code
 * fence, searching from `from` (itself such a place, or 0). `from` when there is none.
 */
export function finishedBlocksEnd(text: string, from: number): number {
  let end = from;
  let fence: string | null = null;
  let lineStart = from;
  while (lineStart < text.length) {
    const newline = text.indexOf('\n', lineStart);
    if (newline < 0) break; // the last line is still being written
    const line = text.slice(lineStart, newline);
    const opener = FENCE.exec(line)?.[1];
    if (fence === null && opener) fence = opener[0]!.repeat(opener.length);
    else if (fence !== null && opener && opener[0] === fence[0] && opener.length >= fence.length && line.trim() === opener) fence = null;
    else if (fence === null && line.trim() === '') end = newline + 1;
    lineStart = newline + 1;
  }
  return end;
}

export class StreamedMarkdown {
  private text = '';
  private finishedEnd = 0;
  private openBlock: ChildNode[] = [];

  /** `element` gets the sanitised HTML of renderMarkdown (see markdown.ts), block by block. */
  constructor(readonly element: HTMLElement) {}

  update(text: string): void {
    if (!text.startsWith(this.text)) {
      // Not a continuation (an edit, another answer): start over.
      this.element.replaceChildren();
      this.finishedEnd = 0;
      this.openBlock = [];
    }
    this.text = text;
    for (const node of this.openBlock) node.remove();
    const end = finishedBlocksEnd(text, this.finishedEnd);
    if (end > this.finishedEnd) {
      this.element.append(fragment(text.slice(this.finishedEnd, end)));
      this.finishedEnd = end;
    }
    const open = fragment(text.slice(this.finishedEnd));
    this.openBlock = [...open.childNodes];
    this.element.append(open);
  }
}

function fragment(markdown: string): DocumentFragment {
  const template = document.createElement('template');
  // Safe: renderMarkdown escapes raw HTML and drops unsafe links and all images (see markdown.ts).
  template.innerHTML = markdown ? renderMarkdown(markdown) : '';
  return template.content;
}
