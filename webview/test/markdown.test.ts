import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isAllowedLink, renderMarkdown } from '../src/markdown';

/** Every start tag in the output: its name and its attributes (markdown-it always double-quotes values). */
function tags(html: string): Array<{ name: string; attrs: Array<[string, string]> }> {
  return [...html.matchAll(/<([a-z][a-z0-9]*)\b((?:\s+[^\s=>]+(?:="[^"]*")?)*)\s*\/?>/gi)].map((m) => ({
    name: m[1]!.toLowerCase(),
    attrs: [...m[2]!.matchAll(/([^\s=]+)(?:="([^"]*)")?/g)].map((a) => [a[1]!.toLowerCase(), a[2] ?? ''] as [string, string]),
  }));
}
function assertSafe(html: string): void {
  // Anything that looks like a tag but did not parse as one would be a parser confusion: refuse it too.
  assert.equal(tags(html).length, (html.match(/<[a-z]/gi) ?? []).length, `every tag parses: ${html}`);
  for (const tag of tags(html)) {
    assert.doesNotMatch(tag.name, /^(script|iframe|object|embed|img|style|link|meta|form|svg|math|base|input|button)$/, `no <${tag.name}>`);
    for (const [name, value] of tag.attrs) {
      assert.doesNotMatch(name, /^on/, `no event handler attribute ${name} in <${tag.name}>`);
      assert.ok(['href', 'title', 'rel', 'class', 'start', 'type'].includes(name), `unexpected attribute ${name} in <${tag.name}>`);
      if (name === 'href') assert.match(value, /^(https?:|mailto:)/i, `href ${value}`);
    }
  }
}

describe('markdown sanitiser', () => {
  it('renders ordinary markdown', () => {
    const html = renderMarkdown('# Title\n\nSome **bold** and `code`.\n\n```ts\nconst a = 1 < 2;\n```\n\n- one\n- two');
    assert.match(html, /<h1>Title<\/h1>/);
    assert.match(html, /<strong>bold<\/strong>/);
    assert.match(html, /<code>code<\/code>/);
    assert.match(html, /const a = 1 &lt; 2;/);
    assert.match(html, /<li>one<\/li>/);
  });

  it('escapes raw HTML: script tags never become elements', () => {
    const html = renderMarkdown('Hi <script>alert(1)</script> there\n\n<script src="https://evil.example/x.js"></script>');
    assert.doesNotMatch(html, /<script/i);
    assert.match(html, /&lt;script&gt;alert\(1\)&lt;\/script&gt;/);
    assertSafe(html);
  });

  it('escapes onerror / event handler attributes in raw HTML', () => {
    for (const input of ['<img src=x onerror=alert(1)>', '<a href="https://a.com" onclick="steal()">x</a>', '<svg onload=alert(1)>', '<div onmouseover="x()">hover</div>']) {
      const html = renderMarkdown(input);
      assertSafe(html);
      assert.doesNotMatch(html, /<(img|svg|div)\b/i, input);
    }
  });

  it('renders javascript:, vbscript:, data: and file: links as text', () => {
    for (const input of [
      '[click](javascript:alert(1))',
      '[click](JAVASCRIPT:alert(1))',
      '[click](javascript&#58;alert(1))',
      '[click](jav&#x61;script:alert(1))',
      '[click](  javascript:alert(1))',
      '[click](vbscript:msgbox(1))',
      '[click](data:text/html;base64,PHNjcmlwdD4=)',
      '[click](file:///etc/passwd)',
      '[quit](command:workbench.action.quit)',
      '[open](vscode://file/etc/passwd)',
      '[rel](../../secrets.txt)',
      '[frag](#top)',
      '<javascript:alert(1)>',
      '[click][ref]\n\n[ref]: javascript:alert(1)',
    ]) {
      const html = renderMarkdown(input);
      assert.doesNotMatch(html, /<a\b/i, `${input} → ${html}`);
      assertSafe(html);
    }
  });

  it('keeps http, https and mailto links, with rel=noopener', () => {
    const html = renderMarkdown('[a](https://example.com/x?y=1) [b](http://example.com) [c](mailto:me@example.com) and https://auto.example.com');
    assert.match(html, /<a href="https:\/\/example.com\/x\?y=1" rel="noopener noreferrer">a<\/a>/);
    assert.match(html, /<a href="http:\/\/example.com" rel="noopener noreferrer">b<\/a>/);
    assert.match(html, /<a href="mailto:me@example.com" rel="noopener noreferrer">c<\/a>/);
    assert.match(html, /<a href="https:\/\/auto.example.com"/);
    assertSafe(html);
  });

  it('never loads images: remote ones become links, others alt text', () => {
    const remote = renderMarkdown('![a cat](https://evil.example/track.png)');
    assert.doesNotMatch(remote, /<img/i);
    assert.match(remote, /<a class="md-image-link" href="https:\/\/evil.example\/track.png"[^>]*>a cat<\/a>/);
    const data = renderMarkdown('![pixel](data:image/png;base64,iVBORw0KGgo=)');
    assert.doesNotMatch(data, /<img/i);
    const relative = renderMarkdown('![local](./x.png)');
    assert.doesNotMatch(relative, /<img/i);
    for (const html of [remote, data, relative]) assertSafe(html);
  });

  it('escapes quotes in link titles and image alt text', () => {
    const html = renderMarkdown('[t](https://a.com "x\\" onmouseover=\\"alert(1)") ![a" onerror="x](https://a.com/i.png)');
    assertSafe(html);
    assert.doesNotMatch(html, /" onmouseover="/);
    assert.doesNotMatch(html, /" onerror="/);
  });

  it('isAllowedLink accepts only http, https and mailto', () => {
    for (const ok of ['http://a.com', 'https://a.com/x', 'HTTPS://A.COM', 'mailto:a@b.c']) assert.equal(isAllowedLink(ok), true, ok);
    for (const bad of ['javascript:alert(1)', 'java\tscript:alert(1)', ' javascript:x', 'data:text/html,x', 'vscode://x', 'command:workbench.action.quit', '/etc/passwd', '#top', '']) {
      assert.equal(isAllowedLink(bad), false, JSON.stringify(bad));
    }
  });
});
