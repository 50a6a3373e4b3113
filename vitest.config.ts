import { defineConfig } from 'vitest/config'

// Three projects: `unit` runs everywhere in seconds; `swarm` runs multi-node swarms in-process on loopback;
// `e2e` needs real Debian tools (docker-registry, skopeo, containerd, podman).

// expect.poll waits for a state the code under test reaches just after the event a test awaited (a slot freed
// once the last frame drained, a file removed after readers were told): milliseconds here, but a loaded CI
// machine can stall for a second, vitest's default.
const expect = { poll: { timeout: 10_000 } }

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/**/*.test.ts'],
          exclude: ['test/e2e/**', 'test/swarm/**'],
          testTimeout: 30_000,
          hookTimeout: 30_000,
          expect,
        },
      },
      {
        // Several real libp2p nodes per test: run after the unit project, one file at a time,
        // so they do not compete with it for this machine's two cores.
        test: {
          name: 'swarm',
          include: ['test/swarm/**/*.test.ts'],
          testTimeout: 180_000,
          hookTimeout: 60_000,
          expect,
          fileParallelism: false,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          testTimeout: 300_000,
          hookTimeout: 300_000,
          expect,
          fileParallelism: false,
        },
      },
    ],
  },
})
