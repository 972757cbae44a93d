// Pure formatting helpers of the chat view (no DOM), shared by the components and unit-tested.
import { PROGRESS_STEP_LABELS, type ProgressStep, type SessionStatus, type StepViewState } from '@berth/protocol';

export function formatElapsed(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  const seconds = ms / 1000;
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const minutes = Math.floor(seconds / 60);
  return `${minutes} min ${Math.floor(seconds % 60)} s`;
}

export function stepTitle(step: ProgressStep): string {
  const label = PROGRESS_STEP_LABELS[step];
  return label.charAt(0).toUpperCase() + label.slice(1);
}

/** Text equivalents of the step icons, for screen readers. */
export const STEP_STATE_TEXT: Record<StepViewState, string> = {
  pending: 'pending',
  running: 'running',
  done: 'done',
  skipped: 'skipped',
  failed: 'failed',
};

export const STATUS_TEXT: Record<SessionStatus, string> = {
  preparing: 'Preparing',
  ready: 'Ready',
  running: 'Working',
  sleeping: 'Sleeping',
  failed: 'Failed',
};

/** `https://github.com/acme/app.git` → `acme/app`; anything else is shown as given, shortened. */
export function shortRepo(url: string): string {
  const match = /[/:]([^/:]+\/[^/]+?)(?:\.git)?\/?$/.exec(url);
  const name = match?.[1] ?? url;
  return name.length > 60 ? `…${name.slice(-59)}` : name;
}
