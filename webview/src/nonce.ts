// Lit (inside @vscode-elements) falls back to <style> tags where constructable stylesheets are missing;
// under our CSP those need the page's nonce, which Lit reads from `window.litNonce`.
// This module must be imported before any component.
const script = document.currentScript as HTMLScriptElement | null;
if (script?.nonce) (window as unknown as { litNonce?: string }).litNonce = script.nonce;
export {};
