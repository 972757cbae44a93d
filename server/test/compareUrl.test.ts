import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compareUrl } from '../src/changes/compareUrl';

describe('compareUrl: the "open a pull request" page of a pushed branch', () => {
  it('GitHub over https, ssh and scp syntax; credentials never kept', () => {
    assert.equal(compareUrl('https://github.com/acme/app.git', 'berth/abc'), 'https://github.com/acme/app/pull/new/berth/abc');
    assert.equal(compareUrl('https://x-token:ghp_secret@github.com/acme/app', 'berth/abc'), 'https://github.com/acme/app/pull/new/berth/abc');
    assert.equal(compareUrl('git@github.com:acme/app.git', 'b'), 'https://github.com/acme/app/pull/new/b');
    assert.equal(compareUrl('ssh://git@github.com/acme/app.git', 'b', 'develop'), 'https://github.com/acme/app/compare/develop...b?expand=1');
  });
  it('GitLab (also self-hosted gitlab.*, nested groups) and Bitbucket, with a target branch', () => {
    assert.equal(
      compareUrl('https://gitlab.com/group/sub/app.git', 'berth/x', 'main'),
      'https://gitlab.com/group/sub/app/-/merge_requests/new?merge_request%5Bsource_branch%5D=berth%2Fx&merge_request%5Btarget_branch%5D=main',
    );
    assert.equal(compareUrl('git@gitlab.example.com:team/app.git', 'f'), 'https://gitlab.example.com/team/app/-/merge_requests/new?merge_request%5Bsource_branch%5D=f');
    assert.equal(compareUrl('https://bitbucket.org/team/app.git', 'f', 'main'), 'https://bitbucket.org/team/app/pull-requests/new?source=f&dest=main');
  });
  it('no page for other hosts, local paths, or odd paths', () => {
    assert.equal(compareUrl('https://git.example.com/acme/app.git', 'b'), undefined);
    assert.equal(compareUrl('/srv/git/app.git', 'b'), undefined);
    assert.equal(compareUrl('file:///srv/git/app.git', 'b'), undefined);
    assert.equal(compareUrl('https://github.com/app.git', 'b'), undefined, 'no owner');
    assert.equal(compareUrl('https://github.com/acme/../app', 'b'), undefined);
  });
});
