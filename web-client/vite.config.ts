/// <reference types="node" />
// Vite build of the Tafel web client: `npm run build` writes dist/ (index.html + assets), which
// `tafel serve --web-dir web-client/dist` serves at `/`. `npm run dev` proxies the API and the
// WebSocket rooms to a Tafel server on 127.0.0.1:8080 (TAFEL_DEV_SERVER changes it).
import { defineConfig } from 'vite'

const target = process.env.TAFEL_DEV_SERVER ?? 'http://127.0.0.1:8080'

export default defineConfig({
  build: { outDir: 'dist', emptyOutDir: true, sourcemap: true },
  server: {
    proxy: {
      '/api': target,
      '/ws': { target, ws: true },
    },
  },
})
