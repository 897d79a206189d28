import { defineConfig } from 'vite'

export default defineConfig({
  // Relative asset URLs: the same build works under any path (stratasync dev serves it at /app/).
  base: './',
  worker: { format: 'es' },
  build: { outDir: 'dist', emptyOutDir: true, chunkSizeWarningLimit: 2000, reportCompressedSize: false },
})
