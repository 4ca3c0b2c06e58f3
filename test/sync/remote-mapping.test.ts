import { describe, expect, it } from 'vitest';
import {
  AuthError,
  BadPatchError,
  ConflictError,
  ForbiddenError,
  InvalidRemoteDocumentError,
  NetworkError,
  PayloadTooLargeError,
  ServerError,
  UserDbError,
} from '../../src/errors.js';
import { mapRpcError, parseRemoteDoc, toNetworkError, toRemoteChange } from '../../src/remote/index.js';

const doc = {
  version: 1,
  tables: {
    projects: {
      schema: {
        fields: [
          { name: 'id', type: 'string' },
          { name: 'title', type: 'string' },
        ],
        primaryKey: ['id'],
      },
      rows: [['p_1', 'First']],
    },
  },
};

describe('mapRpcError', () => {
  it('maps PT409 to a ConflictError carrying the normalized server token', () => {
    const e = mapRpcError('userdb_patch', {
      status: 409,
      error: { code: 'PT409', message: 'conflict', details: '2026-01-02T03:04:05.123456+00:00' },
    });
    expect(e).toBeInstanceOf(ConflictError);
    expect((e as ConflictError).serverToken).toBe('2026-01-02T03:04:05.123456Z');
    expect(e.code).toBe('conflict');
  });

  it('keeps a ConflictError without token when details are missing or unreadable', () => {
    const e = mapRpcError('userdb_patch', {
      status: 409,
      error: { code: 'PT409', message: 'x', details: 'junk' },
    });
    expect((e as ConflictError).serverToken).toBeNull();
  });

  it.each([
    [
      { status: 413, error: { code: 'PT413', message: 'too big' } },
      PayloadTooLargeError,
      'payload_too_large',
    ],
    [{ status: 400, error: { code: '22023', message: 'bad op 3' } }, BadPatchError, 'bad_patch'],
    [{ status: 400, error: { code: 'P0001', message: 'raised' } }, BadPatchError, 'bad_patch'],
    [{ status: 401, error: { code: 'PGRST303', message: 'JWT expired' } }, AuthError, 'auth'],
    [{ status: 401, error: { code: '42501', message: 'denied' } }, AuthError, 'auth'],
    [{ status: 403, error: { code: '42501', message: 'denied' } }, ForbiddenError, 'forbidden'],
    [{ status: 0, error: { code: '', message: 'TypeError: fetch failed' } }, NetworkError, 'network'],
    [{ status: 408, error: { message: 'timeout' } }, NetworkError, 'network'],
    [{ status: 500, error: { code: 'XX000', message: 'boom' } }, ServerError, 'server'],
    [{ status: 503, error: { message: 'unavailable' } }, ServerError, 'server'],
    [{ status: 404, error: { code: 'PGRST202', message: 'no function' } }, ServerError, 'server'],
  ] as const)('maps %j', (failure, cls, code) => {
    const e = mapRpcError('userdb_patch', failure);
    expect(e).toBeInstanceOf(cls);
    expect(e).toBeInstanceOf(UserDbError);
    expect(e.code).toBe(code);
    expect(e.message).toContain('userdb_patch');
  });

  it('keeps the HTTP status on server errors', () => {
    expect((mapRpcError('f', { status: 502, error: {} }) as ServerError).status).toBe(502);
  });

  it('wraps thrown values as NetworkError and lets typed errors pass', () => {
    const abort = new DOMException('The operation was aborted', 'AbortError');
    expect(toNetworkError('userdb_pull', abort)).toBeInstanceOf(NetworkError);
    expect(toNetworkError('userdb_pull', 'weird')).toBeInstanceOf(NetworkError);
    const typed = new BadPatchError('x');
    expect(toNetworkError('f', typed)).toBe(typed);
  });
});

describe('parseRemoteDoc', () => {
  it('accepts a valid document', () => {
    expect(parseRemoteDoc(doc, 'test')).toEqual(doc);
    expect(parseRemoteDoc({ version: 1, tables: {} }, 'test')).toEqual({ version: 1, tables: {} });
  });

  it.each([
    ['a wrong version', { ...doc, version: 2 }],
    ['a row of the wrong length', { version: 1, tables: { t: { ...doc.tables.projects, rows: [['p_1']] } } }],
    [
      'an unknown field type',
      {
        version: 1,
        tables: { t: { schema: { fields: [{ name: 'id', type: 'uuid' }], primaryKey: ['id'] }, rows: [] } },
      },
    ],
    [
      'a primary key naming no field',
      {
        version: 1,
        tables: {
          t: { schema: { fields: [{ name: 'id', type: 'string' }], primaryKey: ['nope'] }, rows: [] },
        },
      },
    ],
    [
      'duplicate fields',
      {
        version: 1,
        tables: {
          t: {
            schema: {
              fields: [
                { name: 'id', type: 'string' },
                { name: 'id', type: 'string' },
              ],
              primaryKey: ['id'],
            },
            rows: [],
          },
        },
      },
    ],
    [
      'rows that are not arrays',
      { version: 1, tables: { t: { ...doc.tables.projects, rows: [{ id: 1 }] } } },
    ],
    ['no tables', { version: 1 }],
  ])('rejects %s', (_name, bad) => {
    expect(() => parseRemoteDoc(bad, 'userdb_pull')).toThrow(InvalidRemoteDocumentError);
  });
});

describe('toRemoteChange', () => {
  const record = { user_id: 'u', db: doc, updated_at: '2026-01-02 03:04:05.123456+00' };

  it('uses a whole, valid record as a snapshot with the normalized token', () => {
    const change = toRemoteChange({ eventType: 'UPDATE', new: record, old: {}, errors: null });
    expect(change.updatedAt).toBe('2026-01-02T03:04:05.123456Z');
    expect(change.snapshot?.doc).toEqual(doc);
  });

  it('falls back to a bare poke when Realtime reports errors (record cut over its size limit)', () => {
    const change = toRemoteChange({
      eventType: 'UPDATE',
      new: record,
      errors: ['Error 413: Payload Too Large'],
    });
    expect(change).toEqual({ updatedAt: '2026-01-02T03:04:05.123456Z', snapshot: null });
  });

  it('falls back to a bare poke when the db column is missing (unchanged TOAST)', () => {
    const { db: _db, ...partial } = record;
    expect(toRemoteChange({ eventType: 'UPDATE', new: partial, errors: null }).snapshot).toBeNull();
  });

  it('falls back to a bare poke when the document is invalid', () => {
    const change = toRemoteChange({
      eventType: 'UPDATE',
      new: { ...record, db: { version: 1 } },
      errors: null,
    });
    expect(change).toEqual({ updatedAt: '2026-01-02T03:04:05.123456Z', snapshot: null });
  });

  it('carries no token when the record has none or the payload is malformed', () => {
    expect(toRemoteChange({ eventType: 'UPDATE', new: { db: doc }, errors: null })).toEqual({
      updatedAt: null,
      snapshot: null,
    });
    expect(toRemoteChange('garbage')).toEqual({ updatedAt: null, snapshot: null });
    expect(toRemoteChange({ eventType: 'DELETE', new: {}, old: { user_id: 'u' } })).toEqual({
      updatedAt: null,
      snapshot: null,
    });
  });
});
