import { AuthApiError, AuthSessionMissingError, AuthWeakPasswordError } from '@supabase/supabase-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DevServer, signJwt, startDevServer, verifyJwt } from '../../src/devserver/index.js';
import { BOOT_TIMEOUT_MS, client } from './helpers.js';

let server: DevServer;

beforeAll(async () => {
  server = await startDevServer({ port: 0, accessTokenTtl: 120 });
}, BOOT_TIMEOUT_MS);

afterAll(async () => {
  await server?.stop();
});

describe('sign-up and sign-in', () => {
  it('signs up with email and password, returning a GoTrue session with a verifiable JWT', async () => {
    const sb = client(server);
    const { data, error } = await sb.auth.signUp({
      email: 'Ada@Example.com',
      password: 'password-123',
      options: { data: { name: 'Ada' } },
    });
    expect(error).toBeNull();
    const session = data.session!;
    expect(session.token_type).toBe('bearer');
    expect(session.expires_in).toBe(120);
    expect(session.expires_at).toBeGreaterThan(Date.now() / 1000);
    expect(session.refresh_token).toMatch(/^[\w-]{16,}$/);
    expect(data.user).toMatchObject({
      email: 'ada@example.com',
      aud: 'authenticated',
      role: 'authenticated',
      is_anonymous: false,
      user_metadata: { name: 'Ada' },
      app_metadata: { provider: 'email', providers: ['email'] },
    });
    const verified = verifyJwt(session.access_token, server.jwtSecret);
    expect(verified.ok).toBe(true);
    if (!verified.ok) return;
    expect(verified.claims).toMatchObject({
      sub: data.user!.id,
      role: 'authenticated',
      aud: 'authenticated',
      email: 'ada@example.com',
      is_anonymous: false,
      iss: `${server.url}/auth/v1`,
    });
    expect(verified.claims.exp! - verified.claims.iat!).toBe(120);
    expect(typeof verified.claims.session_id).toBe('string');
    const stored = await server.db.query<{ encrypted_password: string }>(
      'select encrypted_password from auth.users where id = $1',
      [data.user!.id],
    );
    expect(stored[0]!.encrypted_password).toMatch(/^\$scrypt\$/);
  });

  it('signs in with the password, and refuses a wrong one as GoTrue does', async () => {
    const sb = client(server);
    await sb.auth.signUp({ email: 'bob@example.com', password: 'password-123' });
    const again = client(server);
    const ok = await again.auth.signInWithPassword({ email: 'bob@example.com', password: 'password-123' });
    expect(ok.error).toBeNull();
    expect(ok.data.user?.email).toBe('bob@example.com');
    const bad = await again.auth.signInWithPassword({ email: 'bob@example.com', password: 'nope-nope' });
    expect(bad.error).toBeInstanceOf(AuthApiError);
    expect(bad.error).toMatchObject({
      status: 400,
      code: 'invalid_credentials',
      message: 'Invalid login credentials',
    });
    const unknown = await again.auth.signInWithPassword({
      email: 'nobody@example.com',
      password: 'password-123',
    });
    expect(unknown.error).toMatchObject({ status: 400, code: 'invalid_credentials' });
  });

  it('refuses a duplicate email, a weak password and an invalid email', async () => {
    const sb = client(server);
    await sb.auth.signUp({ email: 'dup@example.com', password: 'password-123' });
    const dup = await client(server).auth.signUp({ email: 'dup@example.com', password: 'password-123' });
    expect(dup.error).toMatchObject({
      status: 422,
      code: 'user_already_exists',
      message: 'User already registered',
    });
    const weak = await client(server).auth.signUp({ email: 'weak@example.com', password: '123' });
    expect(weak.error).toBeInstanceOf(AuthWeakPasswordError);
    expect(weak.error).toMatchObject({ status: 422, code: 'weak_password' });
    const invalid = await client(server).auth.signUp({ email: 'not-an-email', password: 'password-123' });
    expect(invalid.error).toMatchObject({ status: 400, code: 'validation_failed' });
  });

  it('signs in anonymously', async () => {
    const sb = client(server);
    const { data, error } = await sb.auth.signInAnonymously();
    expect(error).toBeNull();
    expect(data.user).toMatchObject({ is_anonymous: true, email: '', role: 'authenticated' });
    const claims = verifyJwt(data.session!.access_token, server.jwtSecret);
    expect(claims.ok && claims.claims.is_anonymous).toBe(true);
  });

  it(
    'refuses anonymous sign-ins when they are disabled',
    async () => {
      const other = await startDevServer({ port: 0, anonymousSignIns: false });
      try {
        const { error } = await client(other).auth.signInAnonymously();
        expect(error).toMatchObject({ status: 422, code: 'anonymous_provider_disabled' });
      } finally {
        await other.stop();
      }
    },
    BOOT_TIMEOUT_MS,
  );
});

describe('sessions', () => {
  it('refreshes the session, rotating the refresh token, and onAuthStateChange reports it', async () => {
    const sb = client(server);
    const signUp = await sb.auth.signUp({ email: 'carol@example.com', password: 'password-123' });
    const first = signUp.data.session!;
    const events: string[] = [];
    sb.auth.onAuthStateChange((event) => events.push(event));
    const { data, error } = await sb.auth.refreshSession();
    expect(error).toBeNull();
    expect(data.session!.refresh_token).not.toBe(first.refresh_token);
    expect(data.user!.id).toBe(signUp.data.user!.id);
    expect(events).toContain('TOKEN_REFRESHED');
    const rows = await server.db.query<{ revoked: boolean; parent: string | null }>(
      'select revoked, parent from auth.refresh_tokens where user_id = $1 order by id',
      [signUp.data.user!.id],
    );
    expect(rows).toEqual([
      { revoked: true, parent: null },
      { revoked: false, parent: first.refresh_token },
    ]);
  });

  it('rejects an unknown refresh token and a reused one outside the reuse interval', async () => {
    const sb = client(server);
    const unknown = await sb.auth.refreshSession({ refresh_token: 'not-a-token' });
    expect(unknown.error).toMatchObject({ status: 400, code: 'refresh_token_not_found' });

    const owner = client(server);
    const signUp = await owner.auth.signUp({ email: 'dave@example.com', password: 'password-123' });
    const old = signUp.data.session!.refresh_token;
    await owner.auth.refreshSession();
    // Within GoTrue's reuse interval the old token still answers with the active one.
    const reuse = await client(server).auth.refreshSession({ refresh_token: old });
    expect(reuse.error).toBeNull();
    await server.db.query(
      "update auth.refresh_tokens set updated_at = now() - interval '1 minute' where token = $1",
      [old],
    );
    const replay = await client(server).auth.refreshSession({ refresh_token: old });
    expect(replay.error).toMatchObject({ status: 400, code: 'refresh_token_already_used' });
    // Reuse detection revokes the whole session.
    const sessions = await server.db.query('select 1 from auth.sessions where user_id = $1', [
      signUp.data.user!.id,
    ]);
    expect(sessions).toHaveLength(0);
  });

  it('returns the user for a valid token and GoTrue errors otherwise', async () => {
    const sb = client(server);
    const signUp = await sb.auth.signUp({ email: 'erin@example.com', password: 'password-123' });
    const token = signUp.data.session!.access_token;
    const me = await sb.auth.getUser();
    expect(me.error).toBeNull();
    expect(me.data.user?.id).toBe(signUp.data.user!.id);

    const expired = signJwt({ sub: signUp.data.user!.id, role: 'authenticated', exp: 1 }, server.jwtSecret);
    const e1 = await sb.auth.getUser(expired);
    expect(e1.error).toMatchObject({ status: 403, code: 'bad_jwt' });
    const forged = signJwt({ sub: signUp.data.user!.id, role: 'authenticated' }, 'another-secret');
    const e2 = await sb.auth.getUser(forged);
    expect(e2.error).toMatchObject({ status: 403, code: 'bad_jwt' });
    const e3 = await sb.auth.getUser(server.anonKey);
    expect(e3.error).toMatchObject({ status: 403, code: 'bad_jwt' });

    const res = await fetch(`${server.url}/auth/v1/user`, { headers: { apikey: server.anonKey } });
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ error_code: 'no_authorization' });
    expect(token).toBeTruthy();
  });

  it('signs out: the session and its refresh tokens are gone', async () => {
    const sb = client(server);
    const signUp = await sb.auth.signUp({ email: 'frank@example.com', password: 'password-123' });
    const session = signUp.data.session!;
    const events: string[] = [];
    sb.auth.onAuthStateChange((event) => events.push(event));
    const { error } = await sb.auth.signOut();
    expect(error).toBeNull();
    expect(events).toContain('SIGNED_OUT');
    const other = client(server);
    const refresh = await other.auth.refreshSession({ refresh_token: session.refresh_token });
    expect(refresh.error).toMatchObject({ status: 400, code: 'refresh_token_not_found' });
    const user = await other.auth.getUser(session.access_token);
    expect(user.error).toBeInstanceOf(AuthSessionMissingError);
  });

  it('updates the user: metadata merged, password changed, an anonymous user made permanent', async () => {
    const sb = client(server);
    await sb.auth.signUp({
      email: 'gina@example.com',
      password: 'password-123',
      options: { data: { a: 1, b: 2 } },
    });
    const events: string[] = [];
    sb.auth.onAuthStateChange((event) => events.push(event));
    const meta = await sb.auth.updateUser({ data: { b: null, c: 3 } });
    expect(meta.error).toBeNull();
    expect(meta.data.user?.user_metadata).toEqual({ a: 1, c: 3 });
    expect(events).toContain('USER_UPDATED');
    const same = await sb.auth.updateUser({ password: 'password-123' });
    expect(same.error).toMatchObject({ status: 422, code: 'same_password' });
    expect((await sb.auth.updateUser({ password: 'password-456' })).error).toBeNull();
    const relogin = await client(server).auth.signInWithPassword({
      email: 'gina@example.com',
      password: 'password-456',
    });
    expect(relogin.error).toBeNull();
    const taken = await sb.auth.updateUser({ email: 'bob@example.com' });
    expect(taken.error).toMatchObject({ status: 422, code: 'email_exists' });

    const anon = client(server);
    await anon.auth.signInAnonymously();
    const upgraded = await anon.auth.updateUser({ email: 'was-anon@example.com', password: 'password-123' });
    expect(upgraded.error).toBeNull();
    expect(upgraded.data.user).toMatchObject({ email: 'was-anon@example.com', is_anonymous: false });
    const signIn = await client(server).auth.signInWithPassword({
      email: 'was-anon@example.com',
      password: 'password-123',
    });
    expect(signIn.data.user?.id).toBe(upgraded.data.user?.id);
  });

  it('uses the legacy GoTrue error shape without the API version header', async () => {
    const res = await fetch(`${server.url}/auth/v1/token?grant_type=password`, {
      method: 'POST',
      headers: { apikey: server.anonKey, 'content-type': 'application/json' },
      body: JSON.stringify({ email: 'nobody@example.com', password: 'x' }),
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({
      code: 400,
      error_code: 'invalid_credentials',
      msg: 'Invalid login credentials',
    });
    const bad = await fetch(`${server.url}/auth/v1/signup`, {
      method: 'POST',
      headers: {
        apikey: server.anonKey,
        'content-type': 'application/json',
        'x-supabase-api-version': '2024-01-01',
      },
      body: '{nope',
    });
    expect(bad.status).toBe(400);
    expect(bad.headers.get('x-supabase-api-version')).toBe('2024-01-01');
    expect(await bad.json()).toMatchObject({ code: 'bad_json' });
  });
});
