/**
 * The `updated_at` concurrency token, kept exact to the microsecond.
 *
 * PostgREST renders a `timestamptz` as ISO 8601 (`2026-01-02T03:04:05.123456+00:00`), Realtime as
 * Postgres text (`2026-01-02 03:04:05.123456+00`); either may carry any UTC offset and 0–6
 * fractional digits. JavaScript `Date` keeps milliseconds only, so two distinct tokens can look
 * equal through it. Tokens are therefore parsed by hand into BigInt microseconds since the Unix
 * epoch and rendered in one canonical form, `YYYY-MM-DDTHH:MM:SS.ffffffZ`, which Postgres parses
 * back to the same instant.
 */

const TOKEN_RE =
  /^(\d{4,6})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?(?:(Z)|([+-])(\d{2})(?::?(\d{2}))?(?::?(\d{2}))?)$/i;

const MICROS_PER_SECOND = 1_000_000n;
const SECONDS_PER_DAY = 86_400n;

function isLeapYear(y: number): boolean {
  return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
}

function daysInMonth(y: number, m: number): number {
  return m === 2 ? (isLeapYear(y) ? 29 : 28) : [4, 6, 9, 11].includes(m) ? 30 : 31;
}

/** Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`). */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const mp = (month + 9) % 12;
  const doy = Math.floor((153 * mp + 2) / 5) + day - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

/** Inverse of {@link daysFromCivil}. */
function civilFromDays(days: number): [number, number, number] {
  const z = days + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor(
    (doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365,
  );
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const day = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  return [yoe + era * 400 + (month <= 2 ? 1 : 0), month, day];
}

/**
 * Parses a Postgres `timestamptz` rendering into microseconds since the Unix epoch, or `null` when
 * the text is not a timestamp with an explicit offset.
 *
 * @example
 * ```ts
 * tokenMicros('2026-01-02 03:04:05.123456+00') === tokenMicros('2026-01-02T04:04:05.123456+01:00'); // true
 * ```
 */
export function tokenMicros(text: string): bigint | null {
  const m = TOKEN_RE.exec(text.trim());
  if (m === null) return null;
  const [, ys, mos, ds, hs, mis, ss, frac = '', z, sign, ohs, oms = '0', oss = '0'] = m;
  if (z === undefined && sign === undefined) return null;
  const year = Number(ys);
  const month = Number(mos);
  const day = Number(ds);
  const hour = Number(hs);
  const minute = Number(mis);
  const second = Number(ss);
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return null;
  if (hour > 23 || minute > 59 || second > 59) return null;
  let offsetSeconds = 0;
  if (sign !== undefined) {
    const oh = Number(ohs);
    const om = Number(oms);
    const os = Number(oss);
    if (oh > 15 || om > 59 || os > 59) return null;
    offsetSeconds = (sign === '-' ? -1 : 1) * (oh * 3600 + om * 60 + os);
  }
  const days = BigInt(daysFromCivil(year, month, day));
  const seconds = days * SECONDS_PER_DAY + BigInt(hour * 3600 + minute * 60 + second - offsetSeconds);
  return seconds * MICROS_PER_SECOND + BigInt(frac.padEnd(6, '0'));
}

/**
 * Renders microseconds since the Unix epoch in the canonical token form
 * `YYYY-MM-DDTHH:MM:SS.ffffffZ` (always UTC, always six fractional digits).
 *
 * @example
 * ```ts
 * tokenFromMicros(1767323045123456n); // '2026-01-02T03:04:05.123456Z'
 * ```
 */
export function tokenFromMicros(micros: bigint): string {
  let seconds = micros / MICROS_PER_SECOND;
  let frac = micros % MICROS_PER_SECOND;
  if (frac < 0n) {
    frac += MICROS_PER_SECOND;
    seconds -= 1n;
  }
  let days = seconds / SECONDS_PER_DAY;
  let secOfDay = seconds % SECONDS_PER_DAY;
  if (secOfDay < 0n) {
    secOfDay += SECONDS_PER_DAY;
    days -= 1n;
  }
  const [y, mo, d] = civilFromDays(Number(days));
  const s = Number(secOfDay);
  const p2 = (n: number) => String(n).padStart(2, '0');
  return (
    `${String(y).padStart(4, '0')}-${p2(mo)}-${p2(d)}T` +
    `${p2(Math.floor(s / 3600))}:${p2(Math.floor(s / 60) % 60)}:${p2(s % 60)}.${String(frac).padStart(6, '0')}Z`
  );
}

/**
 * Normalizes a token from PostgREST, Realtime or local storage to the canonical form, or returns
 * `null` when it is not a valid timestamp with an offset.
 *
 * @example
 * ```ts
 * normalizeToken('2026-01-02 03:04:05.1+00'); // '2026-01-02T03:04:05.100000Z'
 * ```
 */
export function normalizeToken(text: string): string | null {
  const micros = tokenMicros(text);
  return micros === null ? null : tokenFromMicros(micros);
}

/**
 * Compares two tokens by instant: negative when `a` is older, 0 when equal, positive when newer.
 * Throws a `TypeError` on text that is not a token (callers validate input first).
 *
 * @example
 * ```ts
 * compareTokens('2026-01-02T03:04:05.000001Z', '2026-01-02 03:04:05+00'); // 1
 * ```
 */
export function compareTokens(a: string, b: string): number {
  const ma = tokenMicros(a);
  const mb = tokenMicros(b);
  if (ma === null || mb === null) throw new TypeError(`not an updated_at token: ${ma === null ? a : b}`);
  return ma < mb ? -1 : ma > mb ? 1 : 0;
}

/**
 * True when both tokens name the same instant, or both are absent. Invalid text never equals
 * anything.
 *
 * @example
 * ```ts
 * sameToken('2026-01-02T03:04:05.123456+00:00', '2026-01-02 03:04:05.123456+00'); // true
 * ```
 */
export function sameToken(a: string | null | undefined, b: string | null | undefined): boolean {
  if (a == null || b == null) return a == null && b == null;
  const ma = tokenMicros(a);
  return ma !== null && ma === tokenMicros(b);
}
