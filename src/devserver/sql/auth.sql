-- userdb dev server: the GoTrue tables the dev server's /auth/v1 keeps sessions in,
-- shaped like GoTrue's own (supabase/auth migrations). Runs after bootstrap.sql;
-- idempotent.

create table if not exists auth.sessions (
  id uuid not null primary key,
  user_id uuid not null references auth.users (id) on delete cascade,
  created_at timestamptz,
  updated_at timestamptz,
  refreshed_at timestamp,
  not_after timestamptz,
  user_agent text
);

create index if not exists sessions_user_id_idx on auth.sessions (user_id);

create table if not exists auth.refresh_tokens (
  instance_id uuid,
  id bigserial primary key,
  token varchar(255) unique,
  user_id varchar(255),
  revoked boolean,
  created_at timestamptz,
  updated_at timestamptz,
  parent varchar(255),
  session_id uuid references auth.sessions (id) on delete cascade
);

create index if not exists refresh_tokens_session_id_revoked_idx on auth.refresh_tokens (session_id, revoked);

revoke all on table auth.sessions, auth.refresh_tokens from public, anon, authenticated;
grant all on table auth.sessions, auth.refresh_tokens to service_role;
