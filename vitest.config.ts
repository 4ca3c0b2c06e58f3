import { configDefaults, defineConfig } from 'vitest/config';

/** Components of Vue, Svelte and Solid, mounted in happy-dom with the DOM builds of those frameworks. */
const FRAMEWORKS = 'test/react/frameworks.test.ts';

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
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    server: { deps: { inline: ['svelte', 'solid-js'] } },
    reporters: ['default'],
    onConsoleLog: (log, type) => {
      const plain = log.replace(ANSI, '');
      return !(type === 'stderr' && EXPECTED_NOISE.some((re) => re.test(plain)));
    },
    projects: [
      {
        extends: true,
        test: {
          name: 'node',
          include: ['test/**/*.test.ts'],
          exclude: [...configDefaults.exclude, FRAMEWORKS],
        },
      },
      {
        extends: true,
        // `svelte` and `solid-js/web` resolve to their server builds under Node's conditions
        resolve: { conditions: ['browser', 'development'] },
        test: {
          name: 'frameworks',
          include: [FRAMEWORKS],
          environment: 'happy-dom',
          server: { deps: { inline: ['svelte', 'solid-js'] } },
        },
      },
    ],
  },
});
