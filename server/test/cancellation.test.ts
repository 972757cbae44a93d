import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CANCEL_REASONS, cancel, cancelReasonOf, endsQuietly } from '../src/preparation/cancellation';

describe('cancellation reasons', () => {
  it('travel typed on the signal; the first one wins; a foreign abort is not a cancellation', () => {
    const controller = new AbortController();
    assert.equal(cancelReasonOf(controller.signal), null, 'not aborted');
    cancel(controller, 'budget');
    cancel(controller, 'shutdown');
    assert.equal(cancelReasonOf(controller.signal), 'budget');
    assert.ok(controller.signal.reason instanceof Error, 'a thrown reason still reads as an error');

    const foreign = new AbortController();
    foreign.abort('budget');
    assert.equal(cancelReasonOf(foreign.signal), null, 'a bare string is not trusted as a reason');
  });

  it('only deletion, a lost lease and shutdown end a preparation without recording a failure', () => {
    assert.deepEqual(CANCEL_REASONS.filter(endsQuietly), ['deleted', 'shutdown', 'lease_lost']);
    assert.equal(endsQuietly(null), false);
  });
});
