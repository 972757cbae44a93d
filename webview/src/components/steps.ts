// The preparation step list: done / running / failed, elapsed time, and the latest log line.
import type { StepView } from '@berth/protocol';
import { formatElapsed, STEP_STATE_TEXT, stepTitle } from '../format';
import { h } from './dom';

const ICONS: Record<StepView['state'], string> = {
  pending: '○',
  running: '',
  done: '✓',
  skipped: '–',
  failed: '✗',
};

/** When each running step's elapsed time was last reported, so the clock can keep ticking locally. */
export class StepClock {
  private readonly seen = new Map<string, { elapsedMs: number; at: number }>();

  elapsed(step: StepView, now: number): number {
    if (step.state !== 'running') return step.elapsedMs;
    const known = this.seen.get(step.step);
    if (!known || known.elapsedMs !== step.elapsedMs) {
      this.seen.set(step.step, { elapsedMs: step.elapsedMs, at: now });
      return step.elapsedMs;
    }
    return known.elapsedMs + (now - known.at);
  }

  reset(): void {
    this.seen.clear();
  }
}

export function renderSteps(steps: StepView[], clock: StepClock, now: number): HTMLElement {
  return h(
    'ol',
    { class: 'steps', attrs: { 'aria-label': 'Preparation steps' } },
    ...steps.map((step) => {
      const icon =
        step.state === 'running'
          ? h('vscode-progress-ring', { class: 'step-ring', attrs: { 'aria-hidden': 'true' } })
          : h('span', { class: 'step-glyph', text: ICONS[step.state], attrs: { 'aria-hidden': 'true' } });
      // A step rebuilt from a snapshot is done without a reported time: show none rather than "0 ms".
      const showTime = step.state === 'running' || step.state === 'failed' || (step.state === 'done' && step.elapsedMs > 0);
      return h(
        'li',
        { class: `step step--${step.state}`, attrs: { 'data-step': step.step, 'aria-current': step.state === 'running' ? 'step' : undefined } },
        h('span', { class: 'step-icon' }, icon),
        h('span', { class: 'step-name', text: stepTitle(step.step) }),
        h('span', { class: 'visually-hidden', text: `, ${STEP_STATE_TEXT[step.state]}` }),
        showTime && h('span', { class: 'step-time', text: formatElapsed(clock.elapsed(step, now)) }),
        step.message && step.state !== 'pending' && h('div', { class: 'step-message', text: step.message }),
        step.detail && step.state === 'running' && h('div', { class: 'step-detail', text: step.detail, attrs: { title: step.detail } }),
      );
    }),
  );
}

/** Updates the elapsed time of running steps in place (no re-render: spinners keep turning). */
export function tickSteps(root: HTMLElement, steps: StepView[], clock: StepClock, now: number): void {
  for (const step of steps) {
    if (step.state !== 'running') continue;
    const time = root.querySelector<HTMLElement>(`.step--running[data-step="${step.step}"] .step-time`);
    if (time) time.textContent = formatElapsed(clock.elapsed(step, now));
  }
}
