import { defineConfig } from 'vitest/config';

/**
 * Console output that a passing test is expected to cause and that says nothing about userdb:
 * supabase-js' auth client logs every fetch that fails (`console.error(e)` in auth-js
 * lib/fetch.js) before returning the error it is designed to return, and the tests that take the
 * network or the server down on purpose assert that error. Anything else still prints.
 */
const EXPECTED_NOISE: readonly RegExp[] = [
  /^TypeError: fetch failed\n[\s\S]*@supabase[/\\]auth-js[/\\]dist[/\\]\w+[/\\]lib[/\\]fetch\.js/,
];

/** Terminal colours (Node's inspect adds them to logged errors). */
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching the escape character is the point.
const ANSI = /\u001b\[[0-9;]*m/g;

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    reporters: ['default'],
    onConsoleLog: (log, type) => {
      const plain = log.replace(ANSI, '');
      return !(type === 'stderr' && EXPECTED_NOISE.some((re) => re.test(plain)));
    },
  },
});
