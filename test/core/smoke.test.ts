import { describe, expect, it } from 'vitest';
import { freshEnv, openTyped, project } from './helpers.js';

describe('smoke', () => {
  it('inserts, reads, reopens', async () => {
    const env = freshEnv();
    const db = await openTyped(env);
    await db.table('projects').insert(project('p1'));
    await db.table('projects').update('p1', { title: 'X' });
    await db.table('members').insert({ team: 't', user: 1 });
    expect(await db.table('projects').get('p1')).toMatchObject({ title: 'X', note: null });
    expect(await db.table('members').get(['t', 1])).toEqual({ team: 't', user: 1, role: 'member' });
    const before = await db.export();
    await db.close();
    const db2 = await openTyped(env);
    expect(await db2.export()).toEqual(before);
    expect(db2.startupErrors).toEqual([]);
    await db2.close();
  });
});
