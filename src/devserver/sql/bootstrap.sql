-- userdb: a Supabase-like bootstrap for plain PostgreSQL (15+) and PGlite.
--
-- Hosted Supabase (and `supabase start`) already provide everything below; this
-- file recreates the parts userdb's migrations and the dev server rely on, so that
-- supabase/migrations/*.sql run unchanged on a bare server:
--
--   * roles anon, authenticated (NOLOGIN NOINHERIT), service_role (NOLOGIN NOINHERIT
--     BYPASSRLS) and authenticator (LOGIN NOINHERIT, member of the three), as created
--     by supabase/postgres, with hosted Supabase's statement timeouts (anon 3s,
--     authenticated 8s);
--   * schema auth with auth.users (the columns GoTrue reads and writes) and the
--     helpers auth.uid(), auth.role(), auth.email(), auth.jwt(), which read the JWT
--     claims from the `request.jwt.claims` setting exactly as on Supabase (PostgREST
--     >= 9 sets it per request; the legacy per-claim settings `request.jwt.claim.sub`
--     etc. are honoured first, as Supabase's definitions do);
--   * schema extensions (where Supabase installs extensions);
--   * Supabase's default privileges on schema public;
--   * the (empty) publication supabase_realtime;
--   * schema realtime with realtime.messages, realtime.topic() and realtime.send()
--     (Broadcast from the database, private channels authorized by RLS).
--
-- It must be run by a superuser (PGlite's single user is one). It is idempotent:
-- running it again changes nothing. It is not a migration and must not be run on a
-- real Supabase project.
--
-- Acting as a user, the way PostgREST does:
--   begin;
--   set local role authenticated;
--   select set_config('request.jwt.claims', '{"sub":"<uuid>","role":"authenticated"}', true);
--   select public.userdb_init();
--   commit;

-- Roles ---------------------------------------------------------------------

-- Roles are shared by all databases of a server, and test suites may bootstrap several
-- databases at once: each step tolerates a concurrent run and only changes what differs.
-- authenticator gets no password here: give it one (alter role authenticator password
-- '...') before letting a PostgREST-like server log in with it over the network.
do $bootstrap$
declare
  v_role record;
begin
  for v_role in
    select *
    from (values
      ('anon', false, false),
      ('authenticated', false, false),
      ('service_role', false, true),
      ('authenticator', true, false)
    ) as r(name, can_login, bypass_rls)
  loop
    if not exists (select 1 from pg_catalog.pg_roles where rolname = v_role.name) then
      begin
        execute format('create role %I %s noinherit %s', v_role.name,
          case when v_role.can_login then 'login' else 'nologin' end,
          case when v_role.bypass_rls then 'bypassrls' else 'nobypassrls' end);
      exception when duplicate_object or unique_violation then
        null; -- created concurrently
      end;
    end if;
    -- Keep the attributes right when the role existed before (e.g. made by hand).
    if exists (
      select 1 from pg_catalog.pg_roles
      where rolname = v_role.name
        and (rolinherit
             or rolbypassrls <> v_role.bypass_rls
             or (not v_role.can_login and rolcanlogin))
    ) then
      execute format('alter role %I noinherit %s %s', v_role.name,
        case when v_role.can_login then '' else 'nologin' end,
        case when v_role.bypass_rls then 'bypassrls' else 'nobypassrls' end);
    end if;
  end loop;
end
$bootstrap$;

do $bootstrap$
declare
  r text;
begin
  foreach r in array array['anon', 'authenticated', 'service_role'] loop
    if not exists (
      select 1
      from pg_catalog.pg_auth_members m
      where m.roleid = r::regrole and m.member = 'authenticator'::regrole
    ) then
      begin
        execute format('grant %I to authenticator', r);
      exception when unique_violation then
        null; -- granted concurrently
      end;
    end if;
  end loop;
end
$bootstrap$;

-- Hosted Supabase's statement timeouts for the API roles: anon 3 s, authenticated 8 s
-- (service_role none). A role's settings do not apply on SET ROLE, so the dev server
-- applies them per request as PostgREST does. Only set when the role has no
-- statement_timeout yet, so a value chosen for this server survives a restart.
do $bootstrap$
declare
  v_role record;
begin
  for v_role in select * from (values ('anon', '3s'), ('authenticated', '8s')) as r(name, timeout) loop
    if not exists (
      select 1
      from pg_catalog.pg_db_role_setting s
      cross join lateral unnest(s.setconfig) as c
      where s.setrole = v_role.name::regrole and s.setdatabase = 0 and c like 'statement\_timeout=%'
    ) then
      begin
        execute format('alter role %I set statement_timeout = %L', v_role.name, v_role.timeout);
      exception when others then
        null; -- set concurrently ("tuple concurrently updated")
      end;
    end if;
  end loop;
end
$bootstrap$;

-- Schemas --------------------------------------------------------------------

create schema if not exists auth;
create schema if not exists extensions;

grant usage on schema auth to anon, authenticated, service_role;
grant usage on schema extensions to anon, authenticated, service_role;
grant usage on schema public to anon, authenticated, service_role;

-- Supabase's default privileges: what the project owner creates in public is granted
-- to the API roles; row level security is what protects the rows.
alter default privileges in schema public grant all on tables to anon, authenticated, service_role;
alter default privileges in schema public grant all on sequences to anon, authenticated, service_role;
alter default privileges in schema public grant all on functions to anon, authenticated, service_role;

-- auth.users -------------------------------------------------------------------

-- The columns of GoTrue's auth.users (supabase/auth migrations), so that a minimal
-- auth server can store users in the same shape.
create table if not exists auth.users (
  instance_id uuid,
  id uuid not null primary key default gen_random_uuid(),
  aud varchar(255),
  role varchar(255),
  email varchar(255),
  encrypted_password varchar(255),
  email_confirmed_at timestamptz,
  invited_at timestamptz,
  confirmation_token varchar(255),
  confirmation_sent_at timestamptz,
  recovery_token varchar(255),
  recovery_sent_at timestamptz,
  email_change_token_new varchar(255),
  email_change varchar(255),
  email_change_sent_at timestamptz,
  last_sign_in_at timestamptz,
  raw_app_meta_data jsonb,
  raw_user_meta_data jsonb,
  is_super_admin boolean,
  created_at timestamptz,
  updated_at timestamptz,
  phone text unique default null,
  phone_confirmed_at timestamptz,
  phone_change text default '',
  phone_change_token varchar(255) default '',
  phone_change_sent_at timestamptz,
  confirmed_at timestamptz generated always as (least(email_confirmed_at, phone_confirmed_at)) stored,
  email_change_token_current varchar(255) default '',
  email_change_confirm_status smallint default 0
    check (email_change_confirm_status >= 0 and email_change_confirm_status <= 2),
  banned_until timestamptz,
  reauthentication_token varchar(255) default '',
  reauthentication_sent_at timestamptz,
  is_sso_user boolean not null default false,
  deleted_at timestamptz,
  is_anonymous boolean not null default false
);

create index if not exists users_instance_id_idx on auth.users (instance_id);
create index if not exists users_is_anonymous_idx on auth.users (is_anonymous);
create unique index if not exists users_email_partial_key on auth.users (email) where (is_sso_user = false);

comment on table auth.users is 'Auth: stores user login data within a secure schema.';

-- On Supabase only the auth server and the project owner touch auth.users.
revoke all on table auth.users from public, anon, authenticated;
grant all on table auth.users to service_role;

-- JWT helpers -----------------------------------------------------------------
-- Same definitions as Supabase's (supabase/auth migrations): the legacy per-claim
-- setting wins when set, otherwise the claim is read from request.jwt.claims.

create or replace function auth.uid()
returns uuid
language sql
stable
as $$
  select
    coalesce(
      nullif(current_setting('request.jwt.claim.sub', true), ''),
      (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
    )::uuid
$$;

comment on function auth.uid() is 'Deprecated. Use auth.jwt() -> ''sub'' instead.';

create or replace function auth.role()
returns text
language sql
stable
as $$
  select
    coalesce(
      nullif(current_setting('request.jwt.claim.role', true), ''),
      (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
    )::text
$$;

comment on function auth.role() is 'Deprecated. Use auth.jwt() -> ''role'' instead.';

create or replace function auth.email()
returns text
language sql
stable
as $$
  select
    coalesce(
      nullif(current_setting('request.jwt.claim.email', true), ''),
      (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'email')
    )::text
$$;

comment on function auth.email() is 'Deprecated. Use auth.jwt() -> ''email'' instead.';

create or replace function auth.jwt()
returns jsonb
language sql
stable
as $$
  select
    coalesce(
      nullif(current_setting('request.jwt.claim', true), ''),
      nullif(current_setting('request.jwt.claims', true), '')
    )::jsonb
$$;

grant execute on function auth.uid(), auth.role(), auth.email(), auth.jwt()
  to anon, authenticated, service_role;

-- Realtime ------------------------------------------------------------------------
-- Supabase creates this publication empty; migrations add their tables to it.

do $bootstrap$
begin
  if not exists (select 1 from pg_catalog.pg_publication where pubname = 'supabase_realtime') then
    create publication supabase_realtime;
  end if;
end
$bootstrap$;

-- realtime.messages, realtime.topic() and realtime.send(): Broadcast from the database,
-- as Supabase Realtime's own migrations define them (the hosted table is partitioned by
-- inserted_at and pruned after a few days; here it is one table that the dev server
-- prunes). A private channel join is authorized by running a select on realtime.messages
-- as the joining user, with realtime.topic() returning the channel's topic; sending is an
-- insert that realtime.send turns into a WARNING when it fails, as on Supabase.
create schema if not exists realtime;
grant usage on schema realtime to anon, authenticated, service_role;

create table if not exists realtime.messages (
  topic text not null,
  extension text not null,
  payload jsonb,
  event text,
  private boolean default false,
  updated_at timestamp without time zone not null default now(),
  inserted_at timestamp without time zone not null default now(),
  id uuid not null default gen_random_uuid(),
  binary_payload bytea,
  primary key (id, inserted_at)
);
alter table realtime.messages add column if not exists binary_payload bytea;
do $bootstrap$
begin
  if not exists (
    select 1 from pg_catalog.pg_constraint
    where conrelid = 'realtime.messages'::regclass and conname = 'messages_payload_exclusive'
  ) then
    alter table realtime.messages
      add constraint messages_payload_exclusive check (payload is null or binary_payload is null) not valid;
  end if;
end
$bootstrap$;
create index if not exists messages_inserted_at_topic_index
  on realtime.messages (inserted_at desc, topic)
  where extension = 'broadcast' and private is true;
alter table realtime.messages enable row level security;
grant select, insert, update, delete on table realtime.messages to anon, authenticated, service_role;

create or replace function realtime.topic()
returns text
language sql
stable
as $$
  select nullif(current_setting('realtime.topic', true), '')::text;
$$;

-- As on Supabase: the message id is added to the payload (as "id") unless it has one.
create or replace function realtime.send(payload jsonb, event text, topic text, private boolean default true)
returns void
language plpgsql
as $$
declare
  generated_id uuid;
  final_payload jsonb;
begin
  begin
    generated_id := gen_random_uuid();
    if payload ? 'id' then
      final_payload := payload;
    else
      final_payload := jsonb_set(payload, '{id}', to_jsonb(generated_id));
    end if;
    -- The topic of the message, for insert policies that read realtime.topic().
    execute format('set local realtime.topic to %L', topic);
    insert into realtime.messages (id, payload, event, topic, private, extension)
    values (generated_id, final_payload, event, topic, private, 'broadcast');
  exception
    when others then
      raise warning 'WarnSendingBroadcastMessage: %', sqlerrm;
  end;
end;
$$;

create or replace function realtime.send_binary(payload bytea, event text, topic text, private boolean default true)
returns void
language plpgsql
as $$
declare
  generated_id uuid;
begin
  begin
    generated_id := gen_random_uuid();
    execute format('set local realtime.topic to %L', topic);
    insert into realtime.messages (id, binary_payload, event, topic, private, extension)
    values (generated_id, payload, event, topic, private, 'broadcast');
  exception
    when others then
      raise warning 'WarnSendingBroadcastMessage: %', sqlerrm;
  end;
end;
$$;

grant execute on function realtime.topic(), realtime.send(jsonb, text, text, boolean),
  realtime.send_binary(bytea, text, text, boolean)
  to anon, authenticated, service_role;
