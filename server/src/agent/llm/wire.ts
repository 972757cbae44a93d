// What an OpenAI-compatible chat completions endpoint sends back, as the client reads it: a JSON
// answer, stream chunks, error bodies. Real providers add fields, leave fields out and now and then
// put a value of another type in one, so the schemas are as tolerant as the client has always
// been: unknown fields pass, every field may be missing, a field of the wrong type counts as
// missing, and a value that should be an object but is not (an array, a string, a number) reads
// as one without fields, just as a JavaScript property access on it would. Only what the client
// cannot work around fails to parse.
import { z } from 'zod';

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** Any value, read for these fields; null and undefined stay themselves (for `??`). Never fails. */
function fields<S extends z.core.$ZodShape>(shape: S) {
  return z.preprocess((value) => (value === null || value === undefined || isRecord(value) ? value : {}), z.looseObject(shape).nullish());
}

/** A JSON object (an array counts, with no fields); anything else fails. */
function object<S extends z.core.$ZodShape>(shape: S) {
  return z.preprocess((value) => (Array.isArray(value) ? {} : value), z.looseObject(shape));
}

/** Any truthy value, read for these fields; null, false, 0, "" or a missing field fail. */
function truthy<S extends z.core.$ZodShape>(shape: S) {
  return z.preprocess((value) => (!value ? undefined : isRecord(value) ? value : {}), z.looseObject(shape));
}

/**
 * A field used only when it parses as `schema`; any other value counts as missing. For leaf types
 * and for schemas that only fail on a value of the wrong kind (a failure inside is swallowed too).
 */
function ifValid<T extends z.ZodType>(schema: T) {
  return schema.optional().catch(undefined);
}

/** A field that may hold anything: the client looks at its type where it uses it. */
const anything = () => z.unknown().optional();

/** `function` of a tool call. `arguments` is a JSON string; some servers send the JSON value itself. */
const FunctionCall = fields({ name: anything(), arguments: anything() });

// ---- A JSON answer (an endpoint that ignores `stream: true`)

const MessageToolCall = fields({ id: ifValid(z.string()), function: FunctionCall });

/** The answer: at least one choice with a message; everything else is optional. */
/**
 * Tokens of one request (OpenAI: the last chunk of a stream asked with
 * `stream_options.include_usage`, or the JSON answer). Only whole numbers are believed.
 */
const Usage = ifValid(
  z.looseObject({ prompt_tokens: z.number().int().nonnegative(), completion_tokens: z.number().int().nonnegative() }),
);

export const ChatCompletion = z.looseObject({
  usage: Usage,
  choices: z.tuple(
    [
      z.looseObject({
        message: truthy({ content: ifValid(z.string()), tool_calls: ifValid(z.array(MessageToolCall)) }),
        finish_reason: anything(),
      }),
    ],
    z.unknown(),
  ),
});

// ---- A stream chunk

/** One piece of a tool call in a stream: by `index`, or (servers without it) by `id`. */
const ToolCallDelta = object({
  index: ifValid(z.number().refine(Number.isInteger)),
  id: ifValid(z.string()),
  function: FunctionCall,
});

/**
 * `tool_calls` of a delta that is neither a list of objects nor null: what is wrong with it. Kept
 * as a value, not a parse failure, so that the client reports it where it always did: after the
 * delta's text went out, and after an `error` in the same chunk.
 */
export class Malformed {
  constructor(readonly what: string) {}
}

const Delta = fields({
  content: ifValid(z.string()),
  tool_calls: z.union([
    z.array(ToolCallDelta).nullish(),
    z.unknown().transform((value) => new Malformed(Array.isArray(value) ? 'a tool_calls entry is not an object' : 'tool_calls is not an array')),
  ]),
});

/** One data line of the stream: any JSON object. Only the first choice is read. */
export const ChatCompletionChunk = object({
  error: anything(),
  usage: Usage,
  choices: ifValid(z.tuple([fields({ delta: Delta, message: Delta, finish_reason: anything() })], z.unknown())),
});
export type ChatCompletionChunk = z.infer<typeof ChatCompletionChunk>;
export type ToolCallDelta = z.infer<typeof ToolCallDelta>;

// ---- Errors

/** A body, JSON answer or chunk that may carry an `error`. Any value; never fails. */
export const ErrorEnvelope = fields({ error: anything() });

/** An error as providers shape it (OpenAI: message and code; others: detail, status). Never fails. */
export const ErrorFields = fields({ message: anything(), detail: anything(), code: anything(), status: anything() });

/** A value from the wire as text: a string as it is, anything else as JSON. */
export function wireText(value: unknown): string {
  return typeof value === 'string' ? value : (JSON.stringify(value) ?? String(value));
}
