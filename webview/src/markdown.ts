// Markdown for agent output. Agent text is untrusted: it must never run script or load anything remote.
// First wall (here): raw HTML is escaped, links are limited to http/https/mailto, images are never
// rendered as <img>. Second wall: the webview's CSP (no inline script, img-src only local/data).
import MarkdownIt from 'markdown-it';

const ALLOWED_LINK = /^(https?:\/\/|mailto:)/i;

/** Whether a link target may become a clickable link (anything else is shown as text). */
export function isAllowedLink(url: string): boolean {
  // Browsers ignore control characters and whitespace inside a scheme ("java\tscript:"); so do we.
  const compact = url.replace(/[\u0000-\u0020\u007f-\u009f]/g, '');
  return ALLOWED_LINK.test(compact) && compact.length === url.trim().length;
}

const md = new MarkdownIt({ html: false, linkify: true, breaks: true, typographer: false });
md.validateLink = isAllowedLink;

// Images would load remote content: show them as a link to the image (or just the alt text).
md.renderer.rules.image = (tokens, idx) => {
  const token = tokens[idx]!;
  const alt = md.utils.escapeHtml(token.children ? md.renderer.renderInlineAsText(token.children, md.options, {}) : token.content);
  const src = String(token.attrGet('src') ?? '');
  const label = alt || 'image';
  if (/^https?:\/\//i.test(src)) {
    return `<a class="md-image-link" href="${md.utils.escapeHtml(src)}" rel="noopener noreferrer" title="Image (not loaded)">${label}</a>`;
  }
  return `<span class="md-image-alt">${label}</span>`;
};

const defaultLinkOpen = md.renderer.rules.link_open ?? ((tokens, idx, options, _env, self) => self.renderToken(tokens, idx, options));
md.renderer.rules.link_open = (tokens, idx, options, env, self) => {
  tokens[idx]!.attrSet('rel', 'noopener noreferrer');
  return defaultLinkOpen(tokens, idx, options, env, self);
};

/** Renders untrusted markdown to HTML that is safe to assign to innerHTML. */
export function renderMarkdown(text: string): string {
  return md.render(text);
}
