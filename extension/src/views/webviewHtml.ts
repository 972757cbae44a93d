// The chat webview's HTML shell with its strict Content-Security-Policy (no vscode import, so it is testable).
import { randomBytes } from 'node:crypto';

export function createNonce(): string {
  return randomBytes(18).toString('base64url');
}

/**
 * Nothing loads from the network, no inline script runs, and markup from the agent cannot add either:
 * scripts need the nonce, styles come from the extension (or carry the nonce), images only from the
 * extension or data: URIs.
 */
export function contentSecurityPolicy(cspSource: string, nonce: string): string {
  return [
    "default-src 'none'",
    `img-src ${cspSource} data:`,
    `style-src ${cspSource} 'nonce-${nonce}'`,
    `font-src ${cspSource}`,
    `script-src 'nonce-${nonce}'`,
    "base-uri 'none'",
    "form-action 'none'",
  ].join('; ');
}

export interface ChatHtmlOptions {
  cspSource: string;
  nonce: string;
  scriptUri: string;
  styleUri: string;
}

export function chatHtml({ cspSource, nonce, scriptUri, styleUri }: ChatHtmlOptions): string {
  const attr = (value: string) => value.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${attr(contentSecurityPolicy(cspSource, nonce))}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${attr(styleUri)}" nonce="${nonce}">
<title>Berth</title>
</head>
<body>
<script nonce="${nonce}" src="${attr(scriptUri)}"></script>
</body>
</html>`;
}
