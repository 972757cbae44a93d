/**
 * A WebSocket text frame as a string, whichever shape the `ws` library delivered it in (one buffer,
 * an ArrayBuffer, or the fragments of a message), decoded as UTF-8 once, across fragment boundaries.
 */
export function frameText(data: ArrayBuffer | Uint8Array | readonly Uint8Array[]): string {
  if (!Array.isArray(data)) return new TextDecoder().decode(data as ArrayBuffer | Uint8Array);
  const decoder = new TextDecoder();
  const fragments = data as readonly Uint8Array[];
  return fragments.map((f, i) => decoder.decode(f, { stream: i < fragments.length - 1 })).join('');
}
