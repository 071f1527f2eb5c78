// Types of scripts/ci-job.mjs, for the unit tests that import it.

export interface RunStep {
  /** The step's `name`, or the runner's own for an unnamed step: `Run ` and the script's first line. */
  name: string
  run: string
}

export interface UsesStep {
  /** The step's `name`, or `Run ` and the action. */
  name: string
  /** The action, as written: `owner/repo@ref`. */
  uses: string
  with: Record<string, unknown>
}

export interface ContainerJob {
  image: string
  /** The container's `options`, as written; empty when it has none. */
  options: string
  steps: (RunStep | UsesStep)[]
}

export declare function containerJob(text: string, jobId: string): ContainerJob
export declare function writeJob(job: ContainerJob, dir: string): void
