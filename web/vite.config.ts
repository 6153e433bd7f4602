import { defineConfig } from "vite";

// The binary serves dist/ at /, so assets use relative paths; `npm run dev` proxies the API to a running
// `fleettwin up` on 127.0.0.1:8080.
export default defineConfig({
  base: "./",
  build: { outDir: "dist", emptyOutDir: true, chunkSizeWarningLimit: 1024 },
  server: {
    proxy: { "/api": "http://127.0.0.1:8080", "/metrics": "http://127.0.0.1:8080" },
  },
});
