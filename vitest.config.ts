import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    // The lab tests share one nix-daemon, one /etc/nix and two builders: files run one at a time.
    fileParallelism: false,
    projects: [
      { test: { name: 'unit', include: ['__tests__/unit/**/*.test.ts'] } },
      {
        test: {
          name: 'lab',
          include: ['__tests__/lab/**/*.test.ts'],
          testTimeout: 180_000,
          hookTimeout: 180_000
        }
      }
    ]
  }
})
