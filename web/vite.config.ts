import { defineConfig } from 'vite';

// No React plugin: Vite's own transform compiles JSX with React's automatic runtime, which is all
// the dashboard needs (it has no fast refresh, so one dependency fewer to keep current).
export default defineConfig({
  base: '/',
  oxc: { jsx: { runtime: 'automatic', importSource: 'react' } },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    // Hashed file names let the hub cache assets for a year and never serve a stale one.
    assetsDir: 'assets',
    target: 'es2022',
    sourcemap: false,
  },
  server: {
    // `vite web` during development talks to a hub started on the default port.
    proxy: { '/api': { target: 'http://127.0.0.1:8780', ws: true } },
  },
});
