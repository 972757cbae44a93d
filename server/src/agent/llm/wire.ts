// What an OpenAI-compatible chat completions endpoint sends back, described as loosely as real
// providers send it: every field may be missing or of an odd type, and unknown fields pass. The
// client narrows each value where it uses it; nothing it reads is `any`.
import { z } from 'zod';

const FunctionPart = z.looseObject({ name: z.unknown().optional(), arguments: z.unknown().optional() });

/** One entry of `tool_calls`: a whole call (a JSON answer) or a piece of one (a stream delta). */
export const WireToolCall = z.looseObject({ index: z.unknown().optional(), id: z.unknown().optional(), function: FunctionPart.optional().catch(undefined) });
export type WireToolCall = z.infer<typeof WireToolCall>;

const WireMessage = z.looseObject({ content: z.unknown().optional(), tool_calls: z.unknown().optional() });

export const WireChoice = z.looseObject({
  delta: WireMessage.optional().catch(undefined),
  message: WireMessage.optional().catch(undefined),
  finish_reason: z.unknown().optional(),
});
export type WireChoice = z.infer<typeof WireChoice>;

/** A stream chunk, a whole JSON answer, or an error body: an object, whatever else it holds. */
export const WireChunk = z.looseObject({ choices: z.unknown().optional(), error: z.unknown().optional() });
export type WireChunk = z.infer<typeof WireChunk>;

/** An `error` as providers shape it (OpenAI: message/code; others: detail/status). */
export const WireError = z.looseObject({ message: z.unknown().optional(), detail: z.unknown().optional(), code: z.unknown().optional(), status: z.unknown().optional() });

/** A failed fetch: undici puts the system error (or several, for happy eyeballs) in `cause`. */
export const FetchFailure = z.looseObject({
  code: z.string().optional().catch(undefined),
  message: z.string().optional().catch(undefined),
  cause: z
    .looseObject({
      code: z.string().optional().catch(undefined),
      message: z.string().optional().catch(undefined),
      errors: z.array(z.looseObject({ code: z.string().optional().catch(undefined) })).optional().catch(undefined),
    })
    .optional()
    .catch(undefined),
});

/** The first choice of a chunk or an answer, if it has one that is an object. */
export function firstChoice(chunk: WireChunk): WireChoice | undefined {
  if (!Array.isArray(chunk.choices)) return undefined;
  const parsed = WireChoice.safeParse(chunk.choices[0]);
  return parsed.success ? parsed.data : undefined;
}

/** A value from the wire as text: strings as they are, anything else as JSON. */
export function wireText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return `${value}`;
  return JSON.stringify(value) ?? 'undefined';
}
