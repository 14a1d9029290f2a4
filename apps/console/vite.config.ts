/** The console is served by the API under /ui (apps/api/src/routes/console.routes.ts). */
import { defineConfig } from 'vite';

export default defineConfig({
  base: '/ui/',
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    // No inline script anywhere: a strict Content-Security-Policy (script-src 'self') allows the build.
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
  },
});
