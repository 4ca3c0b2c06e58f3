/**
 * Vite config of the userdb demo PWA. The app imports `supabase-userdb` and `supabase-userdb/react` straight from the
 * sources (no library build needed); vite-plugin-pwa generates the service worker that precaches
 * the app shell and the web manifest.
 */
import { fileURLToPath } from 'node:url';
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';
import { VitePWA } from 'vite-plugin-pwa';

const src = (path: string): string => fileURLToPath(new URL(`../src/${path}`, import.meta.url));

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: './',
  resolve: {
    alias: [
      { find: /^supabase-userdb\/react$/, replacement: src('react/index.ts') },
      { find: /^supabase-userdb$/, replacement: src('index.ts') },
    ],
  },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    sourcemap: true,
    chunkSizeWarningLimit: 1024,
  },
  plugins: [
    react(),
    VitePWA({
      registerType: 'autoUpdate',
      injectRegister: false,
      includeAssets: ['icon.svg'],
      manifest: {
        name: 'userdb · Projects & Tasks',
        short_name: 'userdb demo',
        description: 'An offline-first Projects & Tasks app synced through userdb.',
        start_url: './',
        scope: './',
        display: 'standalone',
        background_color: '#f6f7f9',
        theme_color: '#3b5bdb',
        icons: [{ src: 'icon.svg', sizes: 'any', type: 'image/svg+xml', purpose: 'any' }],
      },
      workbox: {
        globPatterns: ['**/*.{js,css,html,svg,webmanifest}'],
        navigateFallback: 'index.html',
        navigateFallbackDenylist: [/^\/config\.json$/],
        clientsClaim: true,
        skipWaiting: true,
        cleanupOutdatedCaches: true,
        runtimeCaching: [
          {
            // Where the backend is: fresh when online, the last known answer when offline.
            urlPattern: ({ url }) => url.pathname.endsWith('/config.json'),
            handler: 'NetworkFirst',
            options: { cacheName: 'userdb-demo-config', networkTimeoutSeconds: 3 },
          },
        ],
      },
    }),
  ],
});
