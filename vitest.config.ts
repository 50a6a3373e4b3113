import { defineConfig } from 'vitest/config'

// Two projects: `unit` runs everywhere in seconds (in-process, real libp2p on loopback);
// `e2e` needs real Debian tools (docker-registry, skopeo, containerd, podman).
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/**/*.test.ts'],
          exclude: ['test/e2e/**'],
          testTimeout: 30_000,
          hookTimeout: 30_000,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          testTimeout: 300_000,
          hookTimeout: 300_000,
          fileParallelism: false,
        },
      },
    ],
  },
})
