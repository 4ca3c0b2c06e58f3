import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  compareTokens,
  normalizeToken,
  sameToken,
  tokenFromMicros,
  tokenMicros,
} from '../../src/remote/token.js';

describe('updated_at tokens', () => {
  it('reads the PostgREST and the Realtime rendering of one instant as equal', () => {
    const rest = '2026-01-02T03:04:05.123456+00:00';
    const realtime = '2026-01-02 03:04:05.123456+00';
    expect(normalizeToken(rest)).toBe('2026-01-02T03:04:05.123456Z');
    expect(normalizeToken(realtime)).toBe('2026-01-02T03:04:05.123456Z');
    expect(sameToken(rest, realtime)).toBe(true);
    expect(tokenMicros(rest)).toBe(1767323045123456n);
  });

  it('keeps the microseconds that Date drops', () => {
    const a = '2026-01-02T03:04:05.123456+00:00';
    const b = '2026-01-02T03:04:05.123457+00:00';
    expect(new Date(a).getTime()).toBe(new Date(b).getTime());
    expect(sameToken(a, b)).toBe(false);
    expect(compareTokens(a, b)).toBe(-1);
    expect(compareTokens(b, a)).toBe(1);
    expect(compareTokens(a, a)).toBe(0);
  });

  it.each([
    ['2026-01-02 03:04:05+00', '2026-01-02T03:04:05.000000Z'],
    ['2026-01-02 03:04:05.1+00', '2026-01-02T03:04:05.100000Z'],
    ['2026-01-02 03:04:05.12+00', '2026-01-02T03:04:05.120000Z'],
    ['2026-01-02 03:04:05.123+00', '2026-01-02T03:04:05.123000Z'],
    ['2026-01-02 03:04:05.1234+00', '2026-01-02T03:04:05.123400Z'],
    ['2026-01-02 03:04:05.12345+00', '2026-01-02T03:04:05.123450Z'],
    ['2026-01-02T03:04:05.000001Z', '2026-01-02T03:04:05.000001Z'],
    ['2026-01-02t03:04:05.5z', '2026-01-02T03:04:05.500000Z'],
    ['2026-01-02T05:34:05.5+02:30', '2026-01-02T03:04:05.500000Z'],
    ['2026-01-02T05:34:05.5+0230', '2026-01-02T03:04:05.500000Z'],
    ['2026-01-01 19:04:05-08', '2026-01-02T03:04:05.000000Z'],
    ['2026-01-02 00:30:00+05:30', '2026-01-01T19:00:00.000000Z'],
    ['1900-01-01 00:00:00+00:53:28', '1899-12-31T23:06:32.000000Z'],
    ['1969-12-31 23:59:59.999999+00', '1969-12-31T23:59:59.999999Z'],
    ['2024-02-29 12:00:00+00', '2024-02-29T12:00:00.000000Z'],
    ['2000-03-01 00:00:00+00', '2000-03-01T00:00:00.000000Z'],
    ['  2026-01-02 03:04:05+00 ', '2026-01-02T03:04:05.000000Z'],
  ])('normalizes %s', (input, canonical) => {
    expect(normalizeToken(input)).toBe(canonical);
  });

  it.each([
    '',
    'yesterday',
    '2026-01-02 03:04:05',
    '2026-01-02',
    '2026-13-02 03:04:05+00',
    '2026-02-29 03:04:05+00',
    '2026-01-32 03:04:05+00',
    '2026-01-02 24:00:00+00',
    '2026-01-02 03:60:00+00',
    '2026-01-02 03:04:60+00',
    '2026-01-02 03:04:05.1234567+00',
    '2026-01-02 03:04:05+16',
    '2026-01-02 03:04:05+00:60',
    '2026-01-02 03:04:05 BC+00',
    'infinity',
  ])('rejects %j', (input) => {
    expect(tokenMicros(input)).toBeNull();
    expect(normalizeToken(input)).toBeNull();
    expect(sameToken(input, input)).toBe(false);
  });

  it('treats two absent tokens as equal and an absent one as different from any', () => {
    expect(sameToken(null, null)).toBe(true);
    expect(sameToken(null, undefined)).toBe(true);
    expect(sameToken(null, '2026-01-02 03:04:05+00')).toBe(false);
  });

  it('throws on comparing text that is not a token', () => {
    expect(() => compareTokens('nope', '2026-01-02 03:04:05+00')).toThrow(TypeError);
  });

  it('round-trips any instant through every rendering, and agrees with Date at millisecond precision', () => {
    const micros = fc.bigInt({ min: -62_135_596_800_000_000n, max: 253_402_300_799_999_999n }); // years 1..9999
    const offset = fc.integer({ min: -15 * 60, max: 15 * 60 }); // minutes
    fc.assert(
      fc.property(
        micros,
        offset,
        fc.integer({ min: 0, max: 6 }),
        fc.boolean(),
        (us, offMin, digits, text) => {
          const canonical = tokenFromMicros(us);
          expect(tokenMicros(canonical)).toBe(us);
          expect(normalizeToken(canonical)).toBe(canonical);
          // render the same instant at another offset, with `digits` fractional digits (truncated)
          const unit = 10n ** BigInt(6 - digits);
          const truncated = us - (((us % unit) + unit) % unit);
          const local = tokenFromMicros(truncated + BigInt(offMin) * 60_000_000n);
          const [date, rest] = local.slice(0, -1).split('T') as [string, string];
          const [hms, frac] = rest.split('.') as [string, string];
          const abs = Math.abs(offMin);
          const sign = offMin < 0 ? '-' : '+';
          const hh = String(Math.floor(abs / 60)).padStart(2, '0');
          const mm = String(abs % 60).padStart(2, '0');
          const off = text ? (mm === '00' ? `${sign}${hh}` : `${sign}${hh}:${mm}`) : `${sign}${hh}:${mm}`;
          const rendered = `${date}${text ? ' ' : 'T'}${hms}${digits > 0 ? `.${frac.slice(0, digits)}` : ''}${off}`;
          expect(tokenMicros(rendered)).toBe(truncated);
          if (us >= -62_135_596_800_000_000n + 86_400_000_000n && us < 8_640_000_000_000_000_000n) {
            const ms = Number(us / 1000n - (us % 1000n < 0n ? 1n : 0n));
            expect(new Date(canonical).getTime()).toBe(ms);
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});
