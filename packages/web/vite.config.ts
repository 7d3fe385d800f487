import { defineConfig } from "vite";
import preact from "@preact/preset-vite";

// The server serves dist/ at /admin; the console uses hash routes (#/devices/ID),
// so no SPA fallback is needed. `npm run dev -w @tessera/web` proxies the API to
// a running server (TESSERA_URL, default https://127.0.0.1:8443).
export default defineConfig({
  base: "/admin/",
  plugins: [preact()],
  build: {
    outDir: "dist",
    emptyOutDir: true,
    sourcemap: false,
    assetsInlineLimit: 0,
  },
  server: {
    proxy: {
      "/admin/api": {
        target: process.env.TESSERA_URL ?? "https://127.0.0.1:8443",
        secure: false,
        changeOrigin: true,
      },
    },
  },
});
